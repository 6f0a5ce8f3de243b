# cell: activation_stats
# loses: test_activation_stats
# mistake: statistics before the ReLU
def activation_stats(model, images):
    """Per-filter mean and std of the first-layer activations.

    Args:
        model: a network whose first layer is model.conv1.
        images: float tensor (N, 1, H, W).
    Returns:
        (mean, std), float tensors of shape (F,): over images and positions of relu(model.conv1(images)).
    """
    with torch.no_grad():
        act = model.conv1(images)                      # (N, F, H, W)
        per_filter = act.transpose(0, 1).flatten(1)            # (F, N * H * W)
    return per_filter.mean(dim=1), per_filter.std(dim=1)
