# cell: evaluate
# loses: test_evaluate
# Averages per-batch accuracies and losses: a smaller last batch counts as much as a full one.
@@
-    loss_sum, correct, count = 0.0, 0, 0
+    losses, accs = [], []
@@
-            loss_sum += F.cross_entropy(flat, yb.reshape(-1), reduction="sum").item()
-            correct += (logits.argmax(-1) == yb).sum().item()
-            count += yb.numel()
+            losses.append(F.cross_entropy(flat, yb.reshape(-1)).item())
+            accs.append((logits.argmax(-1) == yb).float().mean().item())
     model.train(was_training)
-    return loss_sum / count, correct / count
+    return sum(losses) / len(losses), sum(accs) / len(accs)
