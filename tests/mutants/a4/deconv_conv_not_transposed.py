# cell: deconv_project
# loses: test_deconv_project
# mistake: ordinary convolution instead of the transposed one
def deconv_project(model, image, filter_index):
    """Deconvnet projection of one pooled first-layer feature map back to pixel space.

    Args:
        model: network with first layer model.conv1, followed by ReLU and 2x2 max-pooling.
        image: tensor (1, H, W).
        filter_index: which feature map to keep.
    Returns:
        tensor (1, H, W). Neither `image` nor the model is modified.
    """
    conv = model.conv1
    with torch.no_grad():
        x = image.reshape(1, 1, *image.shape[-2:]).float()
        maps = F.relu(conv(x))
        pooled, switches = F.max_pool2d(maps, 2, stride=2, return_indices=True)
        only = torch.zeros_like(pooled)
        only[:, filter_index] = pooled[:, filter_index]
        up = F.relu(F.max_unpool2d(only, switches, 2, stride=2, output_size=maps.shape[-2:]))
        pixels = F.conv2d(up, conv.weight.transpose(0, 1), stride=conv.stride, padding=conv.padding)
    return pixels[0]
