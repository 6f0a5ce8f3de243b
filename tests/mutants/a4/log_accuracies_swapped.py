# cell: log_run
# loses: test_log_run
# mistake: train and test accuracy swapped
def log_run(writer, history):
    """Write one training run's curves to TensorBoard.

    Args:
        writer: a torch.utils.tensorboard.SummaryWriter.
        history: dict with keys "train_loss", "train_accuracy", "test_accuracy", each a list of floats, one per epoch.
    Writes history["train_loss"][i] as tag "train/loss", history["train_accuracy"][i] as "train/accuracy" and
    history["test_accuracy"][i] as "test/accuracy", all at step i + 1. Returns nothing.
    """
    tags = {"train_loss": "train/loss", "train_accuracy": "test/accuracy", "test_accuracy": "train/accuracy"}
    for key, tag in tags.items():
        for step, value in enumerate(history[key], start=1):
            writer.add_scalar(tag, float(value), global_step=step)
