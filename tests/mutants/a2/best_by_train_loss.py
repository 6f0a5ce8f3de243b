# cell: best_epoch
# loses: test_best_epoch
# Picks the epoch with the lowest TRAINING loss, which is usually just the last one.
@@
-    scores = history["val_accuracy"]
-    return max(range(len(scores)), key=lambda e: (scores[e], -e))
+    losses = history["loss"]
+    return losses.index(min(losses))
