# cell: log_run
# loses: test_log_run
# mistake: steps start at 0
@@
-        for step, value in enumerate(history[key], start=1):
+        for step, value in enumerate(history[key], start=0):
