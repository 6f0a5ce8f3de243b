# cell: train_model
# loses: test_train_model
# Accuracy from logits with the probability threshold 0.5.
@@
-        correct += ((logits > 0).float() == yb).sum().item()
+        correct += ((logits > 0.5).float() == yb).sum().item()
@@
-            correct += ((logits.detach() > 0).float() == yb).sum().item()
+            correct += ((logits.detach() > 0.5).float() == yb).sum().item()
