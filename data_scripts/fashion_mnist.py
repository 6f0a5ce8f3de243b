"""Real grayscale images for the offline image stand-ins (a4's CIFAR-10 and MNIST).

Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) from the Debian package
dataset-fashion-mnist when it is installed (``data_scripts/install_debian_data.sh``),
else scikit-learn's 1,797 bundled 8x8 digits upscaled to 28x28. Its own module, so that
the MNIST and CIFAR-10 modules both read it without importing each other.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .idx import read_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
DIGIT_NAMES = tuple(str(d) for d in range(10))


def source_images(fashion_dir: Path = FASHION_DIR):
    """Real grayscale images for the stand-ins: (train, test) as (images uint8 (n, 28, 28), labels),
    class names and a description. Fashion-MNIST from the Debian package when it is
    installed, else scikit-learn's 1,797 8x8 digits upscaled to 28x28."""
    files = [Path(fashion_dir) / f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k")
             for k, d in (("images", 3), ("labels", 1))]
    if all(f.is_file() for f in files):
        xtr, ytr, xte, yte = (read_idx(f) for f in files)
        return ((xtr, ytr.astype(np.int64)), (xte, yte.astype(np.int64)), FASHION_NAMES,
                f"Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; Zalando clothing photos, 28x28 grayscale), "
                f"read from the Debian package dataset-fashion-mnist at {fashion_dir}")
    x, y = upscaled_digits()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    n_test = 297
    test, train = order[:n_test], order[n_test:]
    return ((x[train], y[train]), (x[test], y[test]), DIGIT_NAMES,
            "scikit-learn's bundled handwritten digits (1,797 real 8x8 images from the UCI optdigits set), "
            "upscaled to 28x28 (dataset-fashion-mnist is not installed)")


def upscaled_digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits (values 0..16) -> uint8 (1797, 28, 28): bilinear 3x, centred with 2 px border."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    big = F.interpolate(x, size=(24, 24), mode="bilinear", align_corners=False)
    big = F.pad(big, (2, 2, 2, 2)).squeeze(1)
    return (big.clamp(0, 1) * 255).round().to(torch.uint8).numpy(), digits.target.astype(np.int64)
