# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Always starts from zeros, ignoring a given hx.
@@
         if hx is None:
             states = [None] * self.num_layers
-        elif self.mode == "LSTM":
-            states = [(hx[0][l], hx[1][l]) for l in range(self.num_layers)]
-        else:
-            states = [hx[l] for l in range(self.num_layers)]
+        else:  # a given hx is never read
+            states = [None] * self.num_layers
