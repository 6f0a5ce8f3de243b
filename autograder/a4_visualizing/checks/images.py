"""a4_visualizing's hidden checks for to_grayscale, SmallCNN, log_run and filter_grid (see ``checks``)."""
from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from .. import probes
from .. import reference as ref
from ...harness import CheckFailed, Probe, Unit, assert_close, require, tensor_of
from .common import _images


# ====================================================================== to_grayscale

to_grayscale_unit = Unit("to_grayscale", grade_id="test_to_grayscale", objects=("to_grayscale",),
                         probes=probes)


def _rgb(rng, n: int) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8))


def _gray_judge(images, what):
    expected = ref.to_grayscale(images)

    def judge(out):
        got = tensor_of(out["out"], what)
        require(tuple(got.shape) == tuple(expected.shape),
                f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)} = (N, 1, 32, 32) "
                "(channels first, one channel)")
        require(got.is_floating_point(), f"{what}: dtype {got.dtype}, expected a float tensor")
        g = got.double()
        if float(g.max()) > 1.5:
            raise CheckFailed(f"{what}: values up to {float(g.max()):.1f}; divide by 255 so they lie in [0, 1]")
        diffs = {}
        x = images.double() / 255
        for name, weights in (("the plain mean of R, G and B", (1 / 3,) * 3),
                              ("the weights in B, G, R order (channels reversed)", ref.LUMA[::-1])):
            alt = (x[..., 0] * weights[0] + x[..., 1] * weights[1] + x[..., 2] * weights[2]).unsqueeze(1)
            diffs[name] = float((g - alt).abs().max())
        if not torch.allclose(g, expected.double(), atol=1e-5):
            for name, d in diffs.items():
                if d < 1e-5:
                    raise CheckFailed(f"{what}: your result is {name}; use 0.299 R + 0.587 G + 0.114 B "
                                      "(the last axis holds R, G, B in that order)")
            assert_close(got, expected, 1e-5, 0, what)
        require(out["unchanged"], f"{what}: the input array was modified in place")
    return judge


@to_grayscale_unit.check("pure red, green and blue images (luma weights, channel order)", weight=1)
def _gray_primaries(rng):
    n = 4  # every primary, and red twice
    images = torch.zeros((n, 32, 32, 3), dtype=torch.uint8)
    for i in range(n):
        images[i, ..., i % 3] = int(rng.integers(100, 256))
    return Probe("grayscale", images=images), _gray_judge(images, "pure-colour images")


@to_grayscale_unit.check("random uint8 tensor: shape (N, 1, 32, 32), values in [0, 1]", weight=1)
def _gray_random(rng):
    images = _rgb(rng, 3)
    return Probe("grayscale", images=images), _gray_judge(images, "random images")


@to_grayscale_unit.check("a NumPy uint8 array works too", weight=1)
def _gray_numpy(rng):
    images = _rgb(rng, 2)
    return Probe("grayscale", images=images, as_numpy=True), _gray_judge(images, "NumPy input")


check_to_grayscale = to_grayscale_unit.entry_point()


# ====================================================================== SmallCNN

small_cnn_unit = Unit("SmallCNN", grade_id="test_small_cnn", objects=("SmallCNN",), probes=probes)


def _cnn_case(rng):
    # Sizes are fixed (a bug's penalty must not depend on the draw): 3 images, 16 filters.
    return _images(rng, 3), 16


def _cnn_ran(f):
    require("error" not in f, f"on a batch of shape (N, 1, 32, 32): {f.get('error')}")


@small_cnn_unit.check("conv1 is nn.Conv2d(1, 32, ...)", weight=1)
def _cnn_conv1(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        require(f["is_conv2d"], f"self.conv1 should be an nn.Conv2d, found {f['conv1']}")
        require(f["in_channels"] == 1, f"conv1 takes {f['in_channels']} input channels; the images are grayscale (1)")
        require(f["out_channels"] == 32, f"SmallCNN() has {f['out_channels']} first-layer filters, expected 32")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("logits of shape (N, 10), each image independent of the others", weight=1)
def _cnn_logits(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        logits = tensor_of(f["logits"], "SmallCNN()(x)")
        require(tuple(logits.shape) == (len(x), 10), f"SmallCNN()(x) for x of shape {tuple(x.shape)} gave "
                f"{tuple(logits.shape)}, expected ({len(x)}, 10)")
        require(bool(torch.isfinite(logits).all()), "the logits contain NaN or inf")
        assert_close(f["first_alone"], logits[:1], 1e-4, 1e-4,
                     "the first image alone vs in the batch (eval mode)")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("conv1_filters sets the number of first-layer filters", weight=1)
def _cnn_custom(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        require(f["custom_out_channels"] == filters,
                f"SmallCNN(conv1_filters={filters}).conv1 has {f['custom_out_channels']} filters")
        require(f["custom_logits_shape"] == [len(x), 10],
                f"SmallCNN(conv1_filters={filters}) gave logits of shape {f['custom_logits_shape']}")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("gradients reach conv1", weight=1)
def _cnn_grad(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        require(f["conv1_grad"] is not None and f["conv1_grad"] > 0,
                "after backward() conv1.weight has no gradient: is conv1 used in forward()?")
    return Probe("small_cnn", x=x, filters=filters), judge


check_small_cnn = small_cnn_unit.entry_point()


# ====================================================================== log_run

log_run_unit = Unit("log_run", grade_id="test_log_run", objects=("log_run",), probes=probes)


def _history(rng, epochs: int) -> dict:
    loss = np.sort(rng.uniform(0.3, 2.3, size=epochs))[::-1]
    return {"train_loss": [round(float(v), 6) for v in loss],
            "train_accuracy": [round(float(v), 6) for v in np.sort(rng.uniform(0.1, 0.9, size=epochs))],
            "test_accuracy": [round(float(v), 6) for v in np.sort(rng.uniform(0.1, 0.9, size=epochs))]}


def read_events(files) -> dict[str, list[tuple[int, float]]]:
    """Write the returned files into a temp folder and read their scalars with tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    require(isinstance(files, list) and files, "log_run wrote no event file")
    with tempfile.TemporaryDirectory() as tmp:
        nested = []
        for entry in files:
            require(isinstance(entry, list) and len(entry) == 2, "unreadable event files")
            rel, data = entry
            parts = PurePosixPath(str(rel)).parts
            require(parts and ".." not in parts and not str(rel).startswith("/"), "unreadable event files")
            if len(parts) > 1:
                nested.append(str(rel))
            path = Path(tmp).joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tensor_of(data, "event file").numpy().astype(np.uint8).tobytes())
        acc = EventAccumulator(tmp, size_guidance={"scalars": 0})
        acc.Reload()
        tags = acc.Tags().get("scalars", [])
        scalars = {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in tags}
    if not scalars and nested:
        raise CheckFailed("the scalars went to sub-folders (add_scalars?); write each one with "
                          "writer.add_scalar(tag, value, step)")
    return scalars


def _log_judge(history):
    def judge(files):
        scalars = read_events(files)
        missing = [t for t in ref.TAGS.values() if t not in scalars]
        require(not missing, f"no scalars with the tag(s) {missing}; found {sorted(scalars)}")
        for key, tag in ref.TAGS.items():
            got = sorted(scalars[tag])
            steps = [s for s, _ in got]
            want = list(range(1, len(history[key]) + 1))
            if steps == list(range(len(want))):
                raise CheckFailed(f"{tag}: steps start at 0; the first epoch is step 1")
            require(steps == want, f"{tag}: steps {steps}, expected {want}")
            values = [v for _, v in got]
            if not np.allclose(values, history[key], rtol=1e-6, atol=1e-7):
                for other in ref.TAGS:
                    if other != key and np.allclose(values, history[other], rtol=1e-6, atol=1e-7):
                        raise CheckFailed(f"{tag} holds the values of history['{other}']")
                raise CheckFailed(f"{tag}: values {[round(v, 6) for v in values]}, expected {history[key]}")
    return judge


@log_run_unit.check("the three tags train/loss, train/accuracy, test/accuracy", weight=1)
def _log_tags(rng):
    history = _history(rng, 3)

    def judge(files):
        scalars = read_events(files)
        missing = [t for t in ref.TAGS.values() if t not in scalars]
        require(not missing, f"no scalars with the tag(s) {missing}; found {sorted(scalars)}")
    return Probe("log_run", history=history), judge


@log_run_unit.check("one value per epoch at steps 1, 2, ... (read back with tensorboard)", weight=1)
def _log_values(rng):
    history = _history(rng, 4)
    return Probe("log_run", history=history), _log_judge(history)


@log_run_unit.check("a one-epoch history", weight=1)
def _log_one(rng):
    history = _history(rng, 1)
    return Probe("log_run", history=history), _log_judge(history)


check_log_run = log_run_unit.entry_point()


# ====================================================================== filter_grid

filter_grid_unit = Unit("filter_grid", grade_id="test_filter_grid", objects=("filter_grid",),
                        probes=probes)


def _filters(rng, n, k):
    scales = rng.uniform(0.05, 2.0, size=(n, 1, 1, 1))
    offsets = rng.normal(0, 1.0, size=(n, 1, 1, 1))
    return torch.from_numpy((rng.normal(size=(n, 1, k, k)) * scales + offsets).astype(np.float32))


def _grid_judge(weights, nrow, what):
    expected = ref.filter_grid(weights, nrow=nrow or 4)

    def judge(out):
        got = tensor_of(out["out"], what)
        if got.dim() == 3 and got.shape[0] == 1:
            got = got[0]
        require(tuple(got.shape) == tuple(expected.shape),
                f"{what}: grid of shape {tuple(got.shape)}, expected {tuple(expected.shape)} "
                "(one pixel of padding around and between the filters)")
        if not torch.allclose(got.double(), expected.double(), atol=1e-5):
            joint = weights.double()
            joint = (joint - joint.min()) / (joint.max() - joint.min())
            inner = got.double()
            for i in range(len(weights)):
                r, c = divmod(i, nrow or 4)
                k = weights.shape[-1]
                cell = inner[1 + r * (k + 1):1 + r * (k + 1) + k, 1 + c * (k + 1):1 + c * (k + 1) + k]
                if i == 0 and torch.allclose(cell, joint[0, 0], atol=1e-5) and float(weights[0].std()) > 0:
                    raise CheckFailed(f"{what}: the filters are scaled together; scale each filter by its own "
                                      "min and max")
            assert_close(got, expected, 1e-5, 0, what)
        require(out["unchanged"], f"{what}: the weights were modified in place")
    return judge


@filter_grid_unit.check("16 filters 5x5, nrow=4: shape and per-filter min-max scaling", weight=1)
def _grid_16(rng):
    weights = _filters(rng, 16, 5)
    return Probe("filter_grid", weights=weights, nrow=4), _grid_judge(weights, 4, "16 filters")


@filter_grid_unit.check("default nrow=4, filters of very different scales", weight=1)
def _grid_default(rng):
    weights = _filters(rng, 8, 3)
    return Probe("filter_grid", weights=weights), _grid_judge(weights, None, "8 filters, default nrow")


@filter_grid_unit.check("a part-filled last row and a constant filter (all zeros)", weight=1)
def _grid_partial(rng):
    n = 6  # a last row of 2 (nrow=4)
    weights = _filters(rng, n, 3)
    weights[int(rng.integers(0, n))] = float(rng.normal())
    return Probe("filter_grid", weights=weights, nrow=4), _grid_judge(weights, 4, f"{n} filters")


check_filter_grid = filter_grid_unit.entry_point()


# ====================================================================== activation_stats
