# cell: to_grayscale
# loses: test_to_grayscale
# mistake: plain mean of the channels
@@
-    luma = torch.tensor([0.299, 0.587, 0.114])
-    return (x * luma).sum(dim=-1).unsqueeze(1)
+    return x.mean(dim=-1).unsqueeze(1)
