# cell: make_windows
# loses: test_make_windows
# The target is the window's own last character, not the one after it.
def make_windows(ids, seq_len):
    n = len(ids) - seq_len
    if n <= 0:
        return torch.zeros((0, seq_len), dtype=torch.long), torch.zeros(0, dtype=torch.long)
    X = torch.stack([ids[i:i + seq_len] for i in range(n)]).long()
    y = ids[seq_len - 1:-1].clone().long()
    return X, y
