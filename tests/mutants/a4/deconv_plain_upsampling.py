# cell: deconv_project
# loses: test_deconv_project
# mistake: switches not used: nearest-neighbour upsampling
@@
-        up = F.relu(F.max_unpool2d(only, switches, 2, stride=2, output_size=maps.shape[-2:]))
+        up = F.relu(F.interpolate(only, size=maps.shape[-2:], mode="nearest"))
