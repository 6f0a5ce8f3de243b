# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Default state from torch.empty (uninitialised), not zeros.
@@
         if hx is None:
-            states = [None] * self.num_layers
+            empty = torch.empty(input.size(0), self.hidden_size)
+            states = [(empty, empty) if self.mode == "LSTM" else empty] * self.num_layers
