# cell: filter_grid
# loses: test_filter_grid
# mistake: all filters scaled together
def filter_grid(weights, nrow=4):
    """Tile first-layer filters into one image.

    Args:
        weights: tensor (F, 1, k, k).
        nrow: filters per row of the grid.
    Returns:
        float tensor (rows * (k + 1) + 1, nrow * (k + 1) + 1), rows = ceil(F / nrow); each filter min-max scaled
        to [0, 1] on its own (constant filter -> zeros); 0 elsewhere. `weights` is not modified.
    """
    w = weights.detach().float()[:, 0]
    n, k = w.shape[0], w.shape[-1]
    rows = math.ceil(n / nrow)
    grid = torch.zeros(rows * (k + 1) + 1, nrow * (k + 1) + 1)
    for i, filt in enumerate(w):
        lo, hi = w.min(), w.max()
        tile = (filt - lo) / (hi - lo) if hi > lo else torch.zeros_like(filt)
        r, c = divmod(i, nrow)
        grid[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k] = tile
    return grid
