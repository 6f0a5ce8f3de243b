# cell: maximize_activation
# loses: test_maximize_activation
# mistake: input not clipped
@@
-            x = (x + lr * grad).clamp(0.0, 1.0)
+            x = x + lr * grad
