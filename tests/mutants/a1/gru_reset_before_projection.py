# cell: gru_cell
# loses: test_gru_cell
# Reset gate applied to h before the projection: W_hn (r * h) + b_hn.
@@
-        h_r, h_z, h_n = self.h2h(hx).chunk(3, dim=1)
+        h_r, h_z, _ = self.h2h(hx).chunk(3, dim=1)
         reset = torch.sigmoid(x_r + h_r)
+        _, _, h_n = self.h2h(reset * hx).chunk(3, dim=1)
         update = torch.sigmoid(x_z + h_z)
-        new = torch.tanh(x_n + reset * h_n)
+        new = torch.tanh(x_n + h_n)
