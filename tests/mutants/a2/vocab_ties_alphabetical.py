# cell: vocabulary
# loses: test_vocabulary
# Breaks ties alphabetically instead of by first appearance.
@@
-    # sorted() is stable and Counter keeps first-appearance order, so ties stay in that order.
-    ranked = sorted(counts, key=counts.get, reverse=True)
+    ranked = sorted(counts, key=lambda word: (-counts[word], word))
