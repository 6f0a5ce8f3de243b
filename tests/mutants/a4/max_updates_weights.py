# cell: maximize_activation
# loses: test_maximize_activation
# mistake: an optimiser over the image and the model's weights
@@
+    x.requires_grad_(True)
+    opt = torch.optim.SGD([x, *model.parameters()], lr=lr, maximize=True)
     for _ in range(steps):
-        x.requires_grad_(True)
-        objective = F.relu(model.conv1(x))[0, filter_index].mean()
-        (grad,) = torch.autograd.grad(objective, x)
+        opt.zero_grad()
+        F.relu(model.conv1(x))[0, filter_index].mean().backward()
+        opt.step()
         with torch.no_grad():
-            x = (x + lr * grad).clamp(0.0, 1.0)
+            x.clamp_(0.0, 1.0)
