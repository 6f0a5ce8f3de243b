# cell: small_cnn
# loses: test_small_cnn
# mistake: conv1_filters ignored
@@
-        self.conv1 = nn.Conv2d(1, conv1_filters, 5, padding=2)       # 5x5, output 32x32
-        self.conv2 = nn.Conv2d(conv1_filters, conv2_filters, 3, padding=1)
+        self.conv1 = nn.Conv2d(1, 32, 5, padding=2)       # 5x5, output 32x32
+        self.conv2 = nn.Conv2d(32, conv2_filters, 3, padding=1)
