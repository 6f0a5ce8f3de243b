# cell: build_vocab
# loses: test_build_vocab
# Keeps the characters in order of first appearance instead of sorting them.
def build_vocab(text):
    chars = list(dict.fromkeys(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    return chars, stoi
