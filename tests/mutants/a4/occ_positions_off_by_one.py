# cell: occlusion_map
# loses: test_occlusion_map
# mistake: the last position is missed
@@
-    tops = range(0, h - patch + 1, stride)
-    lefts = range(0, w - patch + 1, stride)
+    tops = range(0, h - patch, stride)
+    lefts = range(0, w - patch, stride)
