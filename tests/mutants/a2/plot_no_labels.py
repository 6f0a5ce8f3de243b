# cell: plot_history
# loses: test_plot_history
# Right data, but no line labels and no legends: nobody can tell the lines apart.
def plot_history(history, title=""):
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric])
        ax.plot(epochs, history["val_" + metric])
        ax.set(xlabel="epoch", ylabel=metric)
    fig.suptitle(title)
    return fig
