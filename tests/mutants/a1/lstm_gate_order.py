# cell: lstm_cell
# loses: test_lstm_cell
# Gate blocks read as input, forget, output, cell instead of input, forget, cell, output.
@@
-        i, f, g, o = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)
+        i, f, o, g = (self.x2h(input) + self.h2h(h)).chunk(4, dim=1)
