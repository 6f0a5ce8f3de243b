# cell: filter_grid
# loses: test_filter_grid
# mistake: all filters scaled together
@@
-        lo, hi = filt.min(), filt.max()
+        lo, hi = w.min(), w.max()
