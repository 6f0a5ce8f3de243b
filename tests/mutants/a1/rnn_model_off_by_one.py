# cell: rnn_model
# loses: test_rnn_model_lstm, test_rnn_model_gru, test_rnn_model_rnn_tanh, test_rnn_model_rnn_relu
# Stops one step early: the last time step is never read.
@@
         if hx is None:
-            states = [None] * self.num_layers
+            zeros = input.new_zeros(input.size(0), self.hidden_size)
+            states = [(zeros, zeros) if self.mode == "LSTM" else zeros] * self.num_layers
@@
-        for t in range(input.size(1)):
+        for t in range(input.size(1) - 1):
@@
-        return self.fc(x)
+        return self.fc(states[-1][0] if self.mode == "LSTM" else states[-1])
