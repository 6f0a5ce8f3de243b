# cell: activation_stats
# loses: test_activation_stats
# mistake: statistics before the ReLU
@@
-        act = F.relu(model.conv1(images))                      # (N, F, H, W)
+        act = model.conv1(images)                      # (N, F, H, W)
