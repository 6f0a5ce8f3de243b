# cell: plot_history
# loses: test_plot_history
# Accuracy on the left, loss on the right.
def plot_history(history, title=""):
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in ((ax_acc, "accuracy"), (ax_loss, "loss")):
        ax.plot(epochs, history[metric], label=f"train {metric}")
        ax.plot(epochs, history["val_" + metric], label=f"validation {metric}")
        ax.set(xlabel="epoch", ylabel=metric)
        ax.legend()
    fig.suptitle(title)
    return fig
