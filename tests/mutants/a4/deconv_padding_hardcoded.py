# cell: deconv_project
# loses: test_deconv_project
# mistake: padding 2 hard-coded
@@
-        pixels = F.conv_transpose2d(up, conv.weight, stride=conv.stride, padding=conv.padding)
+        pixels = F.conv_transpose2d(up, conv.weight, padding=2)
