# cell: gru_cell
# loses: test_gru_cell
# h' = z * n + (1 - z) * h (the update gate weights the wrong terms).
@@
-        return (1 - update) * new + update * hx
+        return update * new + (1 - update) * hx
