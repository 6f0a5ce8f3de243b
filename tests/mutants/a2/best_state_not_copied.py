# cell: best_epoch
# loses: test_best_epoch
# Stores model.state_dict() itself: its tensors are the live weights, so "restoring" gives the last epoch.
def best_epoch(history):
    scores = list(history["val_accuracy"])
    return scores.index(max(scores))


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
        self.state = model.state_dict()
        return True

    def restore(self, model):
        model.load_state_dict(self.state)
        return model
