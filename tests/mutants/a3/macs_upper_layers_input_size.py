# cell: macs_per_step
# loses: test_macs_per_step
# Every layer of a stack is charged the first layer's input size.
@@
-            for layer in range(module.num_layers):
-                d = module.input_size if layer == 0 else module.hidden_size
-                total += blocks[type(module)] * module.hidden_size * (d + module.hidden_size)
+            total += module.num_layers * blocks[type(module)] * module.hidden_size * (module.input_size + module.hidden_size)
