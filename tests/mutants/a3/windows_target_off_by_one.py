# cell: make_windows
# loses: test_make_windows
# The target is the window's own last character, not the one after it.
@@
-    y = ids[seq_len:].clone().long()
+    y = ids[seq_len - 1:-1].clone().long()
