# cell: maximize_activation
# loses: test_maximize_activation
# mistake: gradient descent instead of ascent
@@
-            x = (x + lr * grad).clamp(0.0, 1.0)
+            x = (x - lr * grad).clamp(0.0, 1.0)
