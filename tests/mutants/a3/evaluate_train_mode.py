# cell: evaluate
# loses: test_evaluate
# Never switches to eval mode: dropout stays on while evaluating.
def evaluate(model, X, y, batch_size=256):
    loss_sum, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            logits, _ = model(xb)
            if yb.dim() == 1:
                logits = logits[:, -1]
            loss_sum += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1), reduction="sum").item()
            correct += (logits.argmax(-1) == yb).sum().item()
            count += yb.numel()
    return loss_sum / count, correct / count
