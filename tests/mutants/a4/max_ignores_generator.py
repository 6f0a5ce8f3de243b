# cell: maximize_activation
# loses: test_maximize_activation
# mistake: starting noise not drawn with the generator
@@
-    x = torch.rand(1, 1, 32, 32, generator=generator)
+    x = torch.rand(1, 1, 32, 32)
