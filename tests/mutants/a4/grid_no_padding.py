# cell: filter_grid
# loses: test_filter_grid
# mistake: no padding between filters
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
    grid = torch.zeros(rows * k, nrow * k)
    for i, filt in enumerate(w):
        lo, hi = filt.min(), filt.max()
        tile = (filt - lo) / (hi - lo) if hi > lo else torch.zeros_like(filt)
        r, c = divmod(i, nrow)
        grid[r * k:(r + 1) * k, c * k:(c + 1) * k] = tile
    return grid
