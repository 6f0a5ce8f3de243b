# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# .squeeze() on the output drops the batch dimension when B = 1.
@@
-        return self.fc(x)
+        return self.fc(x).squeeze()
