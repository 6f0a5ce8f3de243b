# cell: generate
# loses: test_generate
# Feeds each new character with a fresh (zero) state: the model only ever sees one character of context.
def generate(model, prefix, n_chars, stoi, chars, temperature=1.0, generator=None):
    model.eval()
    out = []
    with torch.no_grad():
        logits, state = model(torch.tensor([[stoi[ch] for ch in prefix]]))
        for _ in range(n_chars):
            last = logits[0, -1]
            if temperature == 0:
                idx = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                idx = int(torch.multinomial(probs, 1, generator=generator))
            out.append(chars[idx])
            logits, state = model(torch.tensor([[idx]]))
    return "".join(out)
