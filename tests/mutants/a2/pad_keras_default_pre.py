# cell: pad_sequences
# loses: test_pad_sequences
# Keras' default 'pre' everywhere: the padding and truncating arguments are ignored.
def pad_sequences(sequences, maxlen=None, padding="pre", truncating="pre", value=0):
    sequences = [list(s) for s in sequences]
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), maxlen), value, dtype=np.int64)
    for row, seq in enumerate(sequences):
        seq = seq[len(seq) - maxlen:] if len(seq) > maxlen else seq
        if seq:
            out[row, maxlen - len(seq):] = seq
    return out
