# cell: pad_sequences
# loses: test_pad_sequences
# Off-by-one truncation: a long sequence keeps maxlen - 1 items and gets one padding value.
def pad_sequences(sequences, maxlen=None, padding="pre", truncating="pre", value=0):
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError("padding and truncating must be 'pre' or 'post'")
    sequences = [list(s) for s in sequences]
    if maxlen is None:
        maxlen = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), maxlen), value, dtype=np.int64)
    for row, seq in enumerate(sequences):
        if len(seq) > maxlen:
            seq = seq[len(seq) - maxlen + 1:] if truncating == "pre" else seq[:maxlen - 1]
        if not seq:
            continue
        if padding == "post":
            out[row, :len(seq)] = seq
        else:
            out[row, maxlen - len(seq):] = seq
    return out
