# cell: to_grayscale
# loses: test_to_grayscale
# mistake: values left in 0..255
@@
-    x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0
+    x = torch.as_tensor(np.asarray(images), dtype=torch.float32)
