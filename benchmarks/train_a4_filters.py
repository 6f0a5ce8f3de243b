"""Train a4's SmallCNN longer, once, offline, and ship its first-layer filters.

A student's 3-epoch run moves the 5x5 first-layer filters only a little away from their
random start, so next to untrained filters they still look like noise. The notebook shows,
beside the student's own, the filters of the same network trained longer on the same
offline stand-in data (the first 5,000 of the notebook's training images, 15 epochs, AdamW
with weight decay, which removes the part of the random start that the data does not
support). This script made ``coursekit/assets/a4_conv1_trained_longer.json``; its SHA-256
is pinned in ``coursekit.vision.TRAINED_LONGER_SHA256`` (run this, then paste the printed
digest there). About 3 minutes on one CPU thread.

    python benchmarks/train_a4_filters.py
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "coursekit" / "assets" / "a4_conv1_trained_longer.json"
SETTINGS = {"epochs": 15, "lr": 3e-3, "weight_decay": 0.5, "batch_size": 64, "images": 5000, "seed": 0}


def main() -> None:
    sys.path.insert(0, str(REPO))
    import torch
    from torch.nn import functional as F

    from autograder.a4_visualizing.reference import SmallCNN, to_grayscale
    from coursekit.vision import evaluate, load_cifar10

    torch.set_num_threads(1)
    data = load_cifar10(n_train=5500, n_test=2000)   # as the notebook loads it (the first 5,000 train)
    x, y = to_grayscale(data["x_train"])[:SETTINGS["images"]], torch.as_tensor(data["y_train"]).long()[:SETTINGS["images"]]
    x_test, y_test = to_grayscale(data["x_test"]), torch.as_tensor(data["y_test"]).long()
    torch.manual_seed(SETTINGS["seed"])
    model = SmallCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=SETTINGS["lr"], weight_decay=SETTINGS["weight_decay"])
    gen = torch.Generator().manual_seed(SETTINGS["seed"])
    start = time.perf_counter()
    for epoch in range(SETTINGS["epochs"]):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), SETTINGS["batch_size"]):
            idx = order[i:i + SETTINGS["batch_size"]]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    accuracy = evaluate(model, x_test, y_test)[1]
    record = {
        "what": "conv1.weight (32, 1, 5, 5) of SmallCNN trained longer on the offline stand-in for CIFAR-10",
        "data": data["what"],
        "made_by": "benchmarks/train_a4_filters.py",
        "settings": SETTINGS, "test_accuracy": round(accuracy, 4),
        "filters": [[[[round(v, 6) for v in row] for row in f[0]]] for f in model.conv1.weight.detach().tolist()],
    }
    OUT.write_text(json.dumps(record) + "\n")
    print(f"test accuracy {accuracy:.3f}; wrote {OUT.relative_to(REPO)}")
    print(f"SHA-256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
