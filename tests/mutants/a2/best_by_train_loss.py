# cell: best_epoch
# loses: test_best_epoch
# Picks the epoch with the lowest TRAINING loss, which is usually just the last one.
def best_epoch(history):
    losses = history["loss"]
    return losses.index(min(losses))


class KeepBest:
    def __init__(self, monitor="val_accuracy"):
        self.monitor = monitor
        self.best_epoch = None
        self.best_score = -float("inf")
        self.state = None

    def update(self, epoch, logs, model):
        score = float(logs[self.monitor])
        if score <= self.best_score:
            return False
        self.best_epoch, self.best_score = epoch, score
        self.state = copy.deepcopy(model.state_dict())
        return True

    def restore(self, model):
        model.load_state_dict(self.state)
        return model
