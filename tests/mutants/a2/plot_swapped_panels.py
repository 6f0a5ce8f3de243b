# cell: plot_history
# loses: test_plot_history
# Accuracy on the left, loss on the right.
@@
-    for ax, metric in zip(axes, ("loss", "accuracy")):
+    for ax, metric in zip(axes, ("accuracy", "loss")):
