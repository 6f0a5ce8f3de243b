# cell: gru_cell
# loses: test_gru_cell
# Reset and update blocks swapped (update, reset, new).
@@
-        x_r, x_z, x_n = self.x2h(input).chunk(3, dim=1)
-        h_r, h_z, h_n = self.h2h(hx).chunk(3, dim=1)
+        x_z, x_r, x_n = self.x2h(input).chunk(3, dim=1)
+        h_z, h_r, h_n = self.h2h(hx).chunk(3, dim=1)
