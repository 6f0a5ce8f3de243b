# cell: build_vocab
# loses: test_build_vocab
# Keeps the characters in order of first appearance instead of sorting them.
@@
-    chars = sorted(set(text))
+    chars = list(dict.fromkeys(text))
