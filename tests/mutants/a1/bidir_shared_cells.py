# cell: bidir_model
# loses: test_bidir_model_lstm, test_bidir_model_gru, test_bidir_model_rnn_tanh, test_bidir_model_rnn_relu
# One cell list serves both directions.
@@
-        self.rnn_cell_list_rev = nn.ModuleList(make(s) for s in sizes)
+        self.rnn_cell_list_rev = self.rnn_cell_list
