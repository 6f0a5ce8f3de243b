# cell: maximize_activation
# loses: test_maximize_activation
# mistake: starting noise not drawn with the generator
def maximize_activation(model, filter_index, steps, lr, generator=None):
    """Gradient ascent on an input image to maximise one first-layer filter's mean activation.

    Args:
        model: network with first layer model.conv1 (not modified; left in eval mode).
        filter_index: which filter.
        steps, lr: number of ascent steps and step size.
        generator: torch.Generator for the starting noise (None: the global one).
    Returns:
        tensor (1, 1, 32, 32) in [0, 1].
    """
    model.eval()                  # the weights are fixed; only the image is optimised
    x = torch.rand(1, 1, 32, 32)
    for _ in range(steps):
        x.requires_grad_(True)
        objective = F.relu(model.conv1(x))[0, filter_index].mean()
        (grad,) = torch.autograd.grad(objective, x)
        with torch.no_grad():
            x = (x + lr * grad).clamp(0.0, 1.0)
    return x.detach()
