# cell: train_model
# loses: test_train_model
# Sigmoid before BCEWithLogitsLoss, which applies another one.
@@
-            loss = loss_fn(logits, yb)
+            loss = loss_fn(torch.sigmoid(logits), yb)
