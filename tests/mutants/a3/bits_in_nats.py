# cell: bits_per_char
# loses: test_bits_per_char
# Returns the cross-entropy in nats, not bits.
def bits_per_char(logits, targets):
    v = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, v), targets.reshape(-1)).item()
