# cell: train_model
# loses: test_train_model
# Validation taken from the start of the data instead of the end.
@@
-    split_at = int(len(x) * (1 - validation_split))
-    x_fit, y_fit = x[:split_at], y[:split_at].float()
-    x_val, y_val = x[split_at:], y[split_at:].float()
+    split_at = int(len(x) * (1 - validation_split))
+    # The FIRST part as validation: not what Keras' validation_split does.
+    x_val, y_val = x[:len(x) - split_at], y[:len(x) - split_at].float()
+    x_fit, y_fit = x[len(x) - split_at:], y[len(x) - split_at:].float()
