# cell: filter_grid
# loses: test_filter_grid
# mistake: no padding between filters
@@
-    grid = torch.zeros(rows * (k + 1) + 1, nrow * (k + 1) + 1)
+    grid = torch.zeros(rows * k, nrow * k)
@@
-        grid[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k] = tile
+        grid[r * k:(r + 1) * k, c * k:(c + 1) * k] = tile
