# cell: vocabulary
# loses: test_vocabulary
# Keeps index == num_words: one index too many for Embedding(num_words, ...).
@@
-            if num_words is not None and index >= num_words:
+            if num_words is not None and index > num_words:
