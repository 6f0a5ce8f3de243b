# cell: lstm_cell
# loses: test_lstm_cell
# Default state allocated with torch.empty and never zeroed.
@@
-            zeros = input.new_zeros(input.size(0), self.hidden_size)
-            hx = (zeros, zeros)
+            hx = (torch.empty(input.size(0), self.hidden_size), torch.empty(input.size(0), self.hidden_size))
