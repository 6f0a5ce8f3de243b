# cell: plot_history
# loses: test_plot_history
# Right data, but no line labels and no legends: nobody can tell the lines apart.
@@
-        ax.plot(epochs, history[metric], "o-", label=f"train {metric}")
-        ax.plot(epochs, history["val_" + metric], "s--", label=f"validation {metric}")
+        ax.plot(epochs, history[metric], "o-")
+        ax.plot(epochs, history["val_" + metric], "s--")
@@
         ax.grid(alpha=0.3)
-        ax.legend()
