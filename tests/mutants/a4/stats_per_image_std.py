# cell: activation_stats
# loses: test_activation_stats
# mistake: a per-sample statistic where a pooled one is meant: the std within each image, averaged over the
# images (misses the spread between images)
def activation_stats(model, images):
    with torch.no_grad():
        act = F.relu(model.conv1(images))                      # (N, F, H, W)
    return act.mean(dim=(0, 2, 3)), act.flatten(2).std(dim=2).mean(dim=0)
