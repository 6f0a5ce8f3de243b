# cell: maximize_activation
# loses: test_maximize_activation
# mistake: an optimiser over the image and the model's weights
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
    x = torch.rand(1, 1, 32, 32, generator=generator)
    x.requires_grad_(True)
    opt = torch.optim.SGD([x, *model.parameters()], lr=lr, maximize=True)
    for _ in range(steps):
        opt.zero_grad()
        F.relu(model.conv1(x))[0, filter_index].mean().backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    return x.detach()
