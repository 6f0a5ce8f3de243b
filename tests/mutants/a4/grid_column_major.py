# cell: filter_grid
# loses: test_filter_grid
# mistake: layout order swapped: the grid is filled column by column (column-major) instead of row by row
def filter_grid(weights, nrow=4):
    w = weights.detach().float()[:, 0]
    n, k = w.shape[0], w.shape[-1]
    rows = math.ceil(n / nrow)
    grid = torch.zeros(rows * (k + 1) + 1, nrow * (k + 1) + 1)
    for i, filt in enumerate(w):
        lo, hi = filt.min(), filt.max()
        tile = (filt - lo) / (hi - lo) if hi > lo else torch.zeros_like(filt)
        c, r = divmod(i, rows)
        grid[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k] = tile
    return grid
