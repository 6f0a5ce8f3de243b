# cell: occlusion_map
# loses: test_occlusion_map
# mistake: occludes the image itself
def occlusion_map(model, image, label, patch=8, stride=4, fill=0.5):
    """True-class probability with a grey square at each position.

    Args:
        model: classifier of (N, 1, H, W) images.
        image: tensor (1, H, W); not modified.
        label: the true class.
        patch, stride, fill: square size, step between positions, value painted.
    Returns:
        tensor (rows, cols) of probabilities, rows = (H - patch) // stride + 1, cols likewise with W.
    """
    model.eval()                  # inference mode (dropout off)
    h, w = image.shape[-2:]
    tops = range(0, h - patch + 1, stride)
    lefts = range(0, w - patch + 1, stride)
    copies = []
    for top in tops:
        for left in lefts:
            occluded = image.reshape(1, h, w)
            occluded[:, top:top + patch, left:left + patch] = fill
            copies.append(occluded)
    with torch.no_grad():
        probs = F.softmax(model(torch.stack(copies)), dim=1)[:, label]
    return probs.reshape(len(tops), len(lefts))
