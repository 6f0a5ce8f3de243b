# cell: generate
# loses: test_generate
# Takes the argmax whatever the temperature.
def generate(model, prefix, n_chars, stoi, chars, temperature=1.0, generator=None):
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(torch.tensor([[stoi[ch] for ch in prefix]]))
        for _ in range(n_chars):
            idx = int(logits[0, -1].argmax())
            out.append(chars[idx])
            logits, state = model(torch.tensor([[idx]]), state)
    return "".join(out)
