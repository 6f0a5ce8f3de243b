# cell: filter_grid
# loses: test_filter_grid
# mistake: layout order swapped: the grid is filled column by column (column-major) instead of row by row
@@
-        r, c = divmod(i, nrow)
+        c, r = divmod(i, rows)
