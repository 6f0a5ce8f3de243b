# cell: to_grayscale
# loses: test_to_grayscale
# mistake: channels taken by reshape instead of the last axis
@@
-    luma = torch.tensor([0.299, 0.587, 0.114])
-    return (x * luma).sum(dim=-1).unsqueeze(1)
+    x = x.reshape(x.shape[0], 3, x.shape[1], x.shape[2])
+    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
