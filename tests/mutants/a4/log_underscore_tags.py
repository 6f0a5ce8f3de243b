# cell: log_run
# loses: test_log_run
# mistake: tags named like the history keys
@@
-            writer.add_scalar(tag, float(value), global_step=step)
+            writer.add_scalar(key, float(value), global_step=step)
