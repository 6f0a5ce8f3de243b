# cell: log_run
# loses: test_log_run
# mistake: train and test accuracy swapped
@@
-    tags = {"train_loss": "train/loss", "train_accuracy": "train/accuracy", "test_accuracy": "test/accuracy"}
+    tags = {"train_loss": "train/loss", "train_accuracy": "test/accuracy", "test_accuracy": "train/accuracy"}
