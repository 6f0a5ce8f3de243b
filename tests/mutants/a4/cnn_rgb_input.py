# cell: small_cnn
# loses: test_small_cnn
# mistake: conv1 expects 3 channels
@@
-        self.conv1 = nn.Conv2d(1, conv1_filters, 5, padding=2)       # 5x5, output 32x32
+        self.conv1 = nn.Conv2d(3, conv1_filters, 5, padding=2)       # 5x5, output 32x32
