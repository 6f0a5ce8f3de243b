# cell: deconv_project
# loses: test_deconv_project
# mistake: ordinary convolution instead of the transposed one
@@
-        pixels = F.conv_transpose2d(up, conv.weight, stride=conv.stride, padding=conv.padding)
+        pixels = F.conv2d(up, conv.weight.transpose(0, 1), stride=conv.stride, padding=conv.padding)
