# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Stops one step early: the last time step is never read.
@@
-        for t in range(input.size(1)):
+        for t in range(input.size(1) - 1):
