"""Assets the package generates from its own reference runs.

a1's question Q3 shows validation curves of three models (a tanh RNN, an LSTM and a
GRU) trained for 100 epochs on the same data, labelled A, B and C in a shuffled
order. The figure ships with the assignment; the answer key stays in autograder/.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

A1 = "a1_rnn_cells"
FIGURE = "abc_training_curves.png"
KEY = Path(__file__).resolve().parents[1] / "autograder" / "a1_rnn_cells" / "abc_key.json"
MODES = {"RNN": "RNN_TANH", "LSTM": "LSTM", "GRU": "GRU"}


def make_a1_abc_figure(course: Path, epochs: int = 100, hidden_size: int = 32, seed: int = 0) -> Path:
    """Train the three reference models, save the figure and the answer key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from autograder.a1_rnn_cells.reference import RNNModel
    from coursekit import set_seed
    from coursekit.speech import load_speech_commands, mfcc_features
    from coursekit.training import make_loader, train_classifier

    speech = load_speech_commands()
    x_tr, y_tr = mfcc_features(speech, "train")
    x_va, y_va = mfcc_features(speech, "validation")
    train = make_loader(x_tr, y_tr, 100, shuffle=True, seed=seed)
    val = make_loader(x_va, y_va, 100)
    letters = ["A", "B", "C"]
    names = list(MODES)
    random.Random(seed).shuffle(names)
    key = dict(zip(letters, names))

    curves = {}
    for letter, name in key.items():
        set_seed(seed)
        model = RNNModel(MODES[name], x_tr.shape[2], hidden_size, 1, True, len(speech.classes))
        hist = train_classifier(model, train, val, epochs=epochs, eval_every=len(train),
                                progress=True, desc=f"{letter} ({name})")
        curves[letter] = hist.val_acc

    fig, ax = plt.subplots(figsize=(7, 4))
    for letter in letters:
        ax.plot(range(1, len(curves[letter]) + 1), curves[letter], label=f"model {letter}")
    ax.set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1.02),
           title=f"Three recurrent models, hidden size {hidden_size}, {epochs} epochs")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = course / "source" / A1 / FIGURE
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)
    KEY.write_text(json.dumps({**key, "data": speech.source, "epochs": epochs, "seed": seed,
                               "hidden_size": hidden_size, "val_acc": curves}, indent=1) + "\n")
    return out
