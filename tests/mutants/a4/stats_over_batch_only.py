# cell: activation_stats
# loses: test_activation_stats
# mistake: statistics over the images only, then averaged over positions
@@
-        per_filter = act.transpose(0, 1).flatten(1)            # (F, N * H * W)
-    return per_filter.mean(dim=1), per_filter.std(dim=1)
+    return act.mean(dim=0).mean(dim=(1, 2)), act.std(dim=0).mean(dim=(1, 2))
