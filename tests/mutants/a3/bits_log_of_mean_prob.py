# cell: bits_per_char
# loses: test_bits_per_char
# Reduction in the wrong order: -log2 of the MEAN probability of the right character, where the mean of
# -log2 p (the cross-entropy) is meant. Equal when every position is equally sure, lower otherwise.
def bits_per_char(logits, targets):
    v = logits.shape[-1]
    p = F.softmax(logits.reshape(-1, v), dim=-1).gather(1, targets.reshape(-1, 1))
    return -math.log2(p.mean().item())
