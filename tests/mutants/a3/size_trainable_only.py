# cell: model_size_bytes
# loses: test_model_size
# Counts only trainable parameters (frozen parameters and buffers take memory too).
@@
-    tensors = list(model.parameters()) + list(model.buffers())
-    return int(sum(t.numel() * t.element_size() for t in tensors))
+    return int(sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad))
