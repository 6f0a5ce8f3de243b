# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Returns fc of the bottom layer's state instead of the top layer's.
@@
-        return self.fc(x)
+        return self.fc(states[0][0] if self.mode == "LSTM" else states[0])
