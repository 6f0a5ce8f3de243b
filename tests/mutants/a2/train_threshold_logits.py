# cell: train_model
# loses: test_train_model
# Accuracy from logits with the probability threshold 0.5.
@torch.no_grad()
def evaluate(model, x, y, batch_size=256):
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device).float()
        logits = model(xb)
        total_loss += nn.functional.binary_cross_entropy_with_logits(logits, yb, reduction="sum").item()
        correct += ((logits > 0.5).float() == yb).sum().item()
    model.train()
    return total_loss / len(x), correct / len(x)


def train_model(model, x, y, epochs=5, batch_size=64, optimizer="adam", lr=1e-3,
                validation_split=0.2, seed=0, callback=None):
    n_val = len(x) - int(len(x) * (1 - validation_split))
    x_fit, y_fit = x[:len(x) - n_val], y[:len(x) - n_val].float()
    x_val, y_val = x[len(x) - n_val:], y[len(x) - n_val:].float()
    device = next(model.parameters()).device
    opt = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop}[optimizer](model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_fit), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x_fit), batch_size):
            batch = order[start:start + batch_size]
            xb, yb = x_fit[batch].to(device), y_fit[batch].to(device)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(batch)
            correct += ((logits.detach() > 0.5).float() == yb).sum().item()
        val_loss, val_acc = evaluate(model, x_val, y_val)
        logs = {"loss": loss_sum / len(x_fit), "accuracy": correct / len(x_fit),
                "val_loss": val_loss, "val_accuracy": val_acc}
        for key, value in logs.items():
            history[key].append(value)
        if callback is not None:
            callback(epoch, logs, model)
    return history
