# cell: vocabulary
# loses: test_vocabulary
# Uses the rank itself as the index: collides with padding/start/OOV.
@@
-            index = word_index[word] + index_from if word in word_index else oov_char
+            index = word_index.get(word, oov_char)
