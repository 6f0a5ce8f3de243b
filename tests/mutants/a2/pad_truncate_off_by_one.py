# cell: pad_sequences
# loses: test_pad_sequences
# Off-by-one truncation: a long sequence keeps maxlen - 1 items and gets one padding value.
@@
-            seq = seq[len(seq) - maxlen:] if truncating == "pre" else seq[:maxlen]
+            seq = seq[len(seq) - maxlen + 1:] if truncating == "pre" else seq[:maxlen - 1]
