# cell: activation_stats
# loses: test_activation_stats
# mistake: a per-sample statistic where a pooled one is meant: the std within each image, averaged over the
# images (misses the spread between images)
@@
-        per_filter = act.transpose(0, 1).flatten(1)            # (F, N * H * W)
-    return per_filter.mean(dim=1), per_filter.std(dim=1)
+    return act.mean(dim=(0, 2, 3)), act.flatten(2).std(dim=2).mean(dim=0)
