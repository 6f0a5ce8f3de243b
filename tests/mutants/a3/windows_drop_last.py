# cell: make_windows
# loses: test_make_windows
# range(len(ids) - seq_len - 1) loses the last window.
def make_windows(ids, seq_len):
    n = len(ids) - seq_len - 1
    if n <= 0:
        return torch.zeros((0, seq_len), dtype=torch.long), torch.zeros(0, dtype=torch.long)
    X = torch.stack([ids[i:i + seq_len] for i in range(n)]).long()
    y = torch.stack([ids[i + seq_len] for i in range(n)]).long()
    return X, y
