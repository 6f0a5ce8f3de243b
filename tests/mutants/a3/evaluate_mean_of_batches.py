# cell: evaluate
# loses: test_evaluate
# Averages per-batch accuracies and losses: a smaller last batch counts as much as a full one.
def evaluate(model, X, y, batch_size=256):
    was_training = model.training
    model.eval()
    losses, accs = [], []
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            logits, _ = model(xb)
            if yb.dim() == 1:
                logits = logits[:, -1]
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1)).item())
            accs.append((logits.argmax(-1) == yb).float().mean().item())
    model.train(was_training)
    return sum(losses) / len(losses), sum(accs) / len(accs)
