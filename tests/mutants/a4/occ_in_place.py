# cell: occlusion_map
# loses: test_occlusion_map
# mistake: occludes the image itself
@@
-            occluded = image.clone().reshape(1, h, w)
+            occluded = image.reshape(1, h, w)
