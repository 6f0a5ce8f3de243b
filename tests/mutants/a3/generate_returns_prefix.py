# cell: generate
# loses: test_generate
# Returns the prefix followed by the new characters.
def generate(model, prefix, n_chars, stoi, chars, temperature=1.0, generator=None):
    model.eval()
    out = list(prefix)
    with torch.no_grad():
        logits, state = model(torch.tensor([[stoi[ch] for ch in prefix]]))
        for _ in range(n_chars):
            last = logits[0, -1]
            if temperature == 0:
                idx = int(last.argmax())
            else:
                idx = int(torch.multinomial(torch.softmax(last / temperature, dim=-1), 1, generator=generator))
            out.append(chars[idx])
            logits, state = model(torch.tensor([[idx]]), state)
    return "".join(out)
