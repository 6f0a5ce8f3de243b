# cell: lstm_cell
# loses: test_lstm_cell
# Right numbers, but computed by torch's fused kernel torch.lstm_cell (not allowed).
@@
-        h, c = hx
-        i, f, g, o = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)
-        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
-        h_next = torch.sigmoid(o) * torch.tanh(c_next)
-        return h_next, c_next
+        return torch.lstm_cell(input, hx, self.x2h.weight, self.h2h.weight, self.x2h.bias, self.h2h.bias)
