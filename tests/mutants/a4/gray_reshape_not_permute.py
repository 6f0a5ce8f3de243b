# cell: to_grayscale
# loses: test_to_grayscale
# mistake: channels taken by reshape instead of the last axis
def to_grayscale(images):
    """RGB images to one luma channel.

    Args:
        images: uint8 array or tensor of shape (N, H, W, 3), channels R, G, B in the last axis.
    Returns:
        float32 tensor of shape (N, 1, H, W), values in [0, 1]: (0.299 R + 0.587 G + 0.114 B) / 255.
        The input is not modified.
    """
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0
    x = x.reshape(x.shape[0], 3, x.shape[1], x.shape[2])
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
