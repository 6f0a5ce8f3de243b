# cell: generate
# loses: test_generate
# Returns the prefix followed by the new characters.
@@
-    out = []
+    out = list(prefix)
