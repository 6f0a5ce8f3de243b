# cell: param_ratio
# loses: test_param_ratio
# Counts one bias vector per block whatever `biases` says (the Keras SimpleRNN count).
@@
-    per_block = hidden_size * input_size + hidden_size * hidden_size + biases * hidden_size
-    return blocks * per_block
+    return blocks * (hidden_size * (input_size + hidden_size) + hidden_size)
