# cell: bidir_model
# loses: test_bidir_model_lstm, test_bidir_model_gru, test_bidir_model_rnn_tanh, test_bidir_model_rnn_relu
# The reverse stack reads the steps in forward order.
@@
-            rev = run(self.rnn_cell_list_rev[l], steps[::-1])[::-1]
+            rev = run(self.rnn_cell_list_rev[l], steps)
