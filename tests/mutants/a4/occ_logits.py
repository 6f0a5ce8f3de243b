# cell: occlusion_map
# loses: test_occlusion_map
# mistake: logits instead of probabilities
@@
-        probs = F.softmax(model(torch.stack(copies)), dim=1)[:, label]
+        probs = model(torch.stack(copies))[:, label]
