# cell: param_ratio
# loses: test_param_ratio
# Forgets the recurrent (hidden-to-hidden) matrix.
@@
-    per_block = hidden_size * input_size + hidden_size * hidden_size + biases * hidden_size
-    return blocks * per_block
+    return blocks * (hidden_size * input_size + biases * hidden_size)
