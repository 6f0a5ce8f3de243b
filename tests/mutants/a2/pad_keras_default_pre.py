# cell: pad_sequences
# loses: test_pad_sequences
# Keras' default 'pre' everywhere: the padding and truncating arguments are ignored.
@@
-    for name, mode in (("padding", padding), ("truncating", truncating)):
-        if mode not in ("pre", "post"):
-            raise ValueError(f"{name} must be 'pre' or 'post', not {mode!r}")
@@
-            seq = seq[len(seq) - maxlen:] if truncating == "pre" else seq[:maxlen]
-        if padding == "post":
-            out[row, :len(seq)] = seq
-        elif len(seq):
+            seq = seq[len(seq) - maxlen:]
+        if len(seq):
