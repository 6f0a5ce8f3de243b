# cell: gru_cell
# loses: test_gru_cell
# Mixes in the projected state W_hn h + b_hn instead of the previous state h.
@@
-        return (1 - update) * new + update * hx
+        return (1 - update) * new + update * h_n
