# cell: bidir_model
# loses: test_bidir_model_lstm, test_bidir_model_gru, test_bidir_model_rnn_tanh, test_bidir_model_rnn_relu
# fc reads [reverse, forward] instead of [forward, reverse].
@@
-        return self.fc(torch.cat([fwd[-1], rev[0]], dim=1))
+        return self.fc(torch.cat([rev[0], fwd[-1]], dim=1))
