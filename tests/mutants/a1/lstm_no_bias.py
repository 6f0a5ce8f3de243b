# cell: lstm_cell
# loses: test_lstm_cell
# Ignores bias=True: the linear maps never get a bias.
@@
-        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=bias)
-        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)
+        self.x2h = nn.Linear(input_size, 4 * hidden_size, bias=False)
+        self.h2h = nn.Linear(hidden_size, 4 * hidden_size, bias=False)
