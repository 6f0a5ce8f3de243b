# cell: to_grayscale
# loses: test_to_grayscale
# mistake: weights applied in B, G, R order
@@
-    luma = torch.tensor([0.299, 0.587, 0.114])
+    luma = torch.tensor([0.114, 0.587, 0.299])
