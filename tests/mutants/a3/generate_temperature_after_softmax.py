# cell: generate
# loses: test_generate
# Divides the probabilities by the temperature after the softmax: multinomial renormalises, so the
# temperature has no effect at all.
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
                probs = torch.softmax(last, dim=-1) / temperature
                idx = int(torch.multinomial(probs, 1, generator=generator))
            out.append(chars[idx])
            logits, state = model(torch.tensor([[idx]]), state)
    return "".join(out)
