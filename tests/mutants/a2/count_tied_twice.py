# cell: count_parameters
# loses: test_count_parameters
# Sums layer by layer, so a tensor shared by two layers is counted twice.
@@
-    table, seen = {}, set()
+    table = {}
     for name, child in model.named_children():
-        fresh = [p for p in child.parameters() if id(p) not in seen]
-        seen.update(id(p) for p in fresh)
-        table[name] = sum(p.numel() for p in fresh)
-    table["total"] = sum(p.numel() for p in model.parameters())  # parameters() skips duplicates
+        table[name] = sum(p.numel() for p in child.parameters())
+    table["total"] = sum(table.values())
