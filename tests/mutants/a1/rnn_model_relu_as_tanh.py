# cell: rnn_model
# loses: test_rnn_model_rnn_relu
# RNN_RELU builds tanh cells.
@@
-                cell = BasicRNNCell(size_in, hidden_size, bias, nonlinearity=mode[4:].lower())
+                cell = BasicRNNCell(size_in, hidden_size, bias, nonlinearity="tanh")
