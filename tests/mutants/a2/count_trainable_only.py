# cell: count_parameters
# loses: test_count_parameters
# Counts only trainable parameters (Keras' "Trainable params", not the total).
@@
-        fresh = [p for p in child.parameters() if id(p) not in seen]
+        fresh = [p for p in child.parameters() if p.requires_grad]
@@
-    table["total"] = sum(p.numel() for p in model.parameters())  # parameters() skips duplicates
+    table["total"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
