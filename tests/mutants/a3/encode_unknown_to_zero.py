# cell: encode_decode
# loses: test_encode_decode
# An unknown character silently becomes index 0.
def encode(text, stoi):
    return torch.tensor([stoi.get(ch, 0) for ch in text], dtype=torch.long)


def decode(ids, chars):
    return "".join(chars[int(i)] for i in ids)
