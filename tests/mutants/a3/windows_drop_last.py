# cell: make_windows
# loses: test_make_windows
# range(len(ids) - seq_len - 1) loses the last window.
@@
-    n = len(ids) - seq_len
+    n = len(ids) - seq_len - 1
@@
-    y = ids[seq_len:].clone().long()
+    y = torch.stack([ids[i + seq_len] for i in range(n)]).long()
