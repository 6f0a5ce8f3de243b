# cell: macs_per_step
# loses: test_macs_per_step
# Gate counts swapped: 3 blocks for the LSTM and 4 for the GRU.
@@
-    blocks = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}
+    blocks = {nn.RNN: 1, nn.GRU: 4, nn.LSTM: 3}
