# cell: occlusion_map
# loses: test_occlusion_map
# mistake: patch one pixel too small
@@
-            occluded[:, top:top + patch, left:left + patch] = fill
+            occluded[:, top:top + patch - 1, left:left + patch - 1] = fill
