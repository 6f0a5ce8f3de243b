# cell: bidir_model
# loses: test_bidir_model_lstm, test_bidir_model_gru, test_bidir_model_rnn_tanh, test_bidir_model_rnn_relu
# Layers above the first read only the forward output (H features, not 2H); right for 1 layer only.
@@
-        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
+        sizes = [input_size] + [hidden_size] * (num_layers - 1)
@@
-            steps = [torch.cat([f, r], dim=1) for f, r in zip(fwd, rev)]
+            steps = fwd
