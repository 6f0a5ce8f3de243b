# cell: activation_stats
# loses: test_activation_stats
# mistake: statistics over the images only, then averaged over positions
def activation_stats(model, images):
    """Per-filter mean and std of the first-layer activations.

    Args:
        model: a network whose first layer is model.conv1.
        images: float tensor (N, 1, H, W).
    Returns:
        (mean, std), float tensors of shape (F,): over images and positions of relu(model.conv1(images)).
    """
    with torch.no_grad():
        act = F.relu(model.conv1(images))                      # (N, F, H, W)
    return act.mean(dim=0).mean(dim=(1, 2)), act.std(dim=0).mean(dim=(1, 2))
