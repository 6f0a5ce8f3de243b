# cell: row_rnn
# loses: test_row_rnn
# mistake: the cell argument ignored
@@
-        self.rnn = layers[cell.lower()](28, hidden_size, num_layers=num_layers, batch_first=True)
+        self.rnn = nn.LSTM(28, hidden_size, num_layers=num_layers, batch_first=True)
