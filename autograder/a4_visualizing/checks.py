"""Hidden checks of a4_visualizing, as units of the checks harness (``autograder.harness``).

Every check draws its inputs (images, filters, network weights, histories) from the
grading run's ``rng``, names a probe of ``a4_visualizing.probes`` for the student's kernel, and
judges what came back against ``a4_visualizing.reference`` here in the grader. TensorBoard event
files written by the student's ``log_run`` are read here with tensorboard's own
``EventAccumulator``.
"""
from __future__ import annotations

import importlib.util
import math
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from . import reference as ref
from ..harness import CheckFailed, Probe, Unit, assert_close, require

PROBES = Path(__file__).with_name("probes.py")


def _probe_module():
    """The probe module imported here too, for its ProbeNet (the same network the kernel builds)."""
    spec = importlib.util.spec_from_file_location("autograder.a4_visualizing.probes_grader", PROBES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROBES = _probe_module()


def _tensor(x, what: str) -> torch.Tensor:
    require(isinstance(x, torch.Tensor), f"{what}: expected a torch tensor, got {type(x).__name__}")
    return x


def _torch(rng, *shape, scale=1.0) -> torch.Tensor:
    return torch.from_numpy(rng.normal(0.0, scale, size=shape).astype(np.float32))


def _net(rng, filters: int = 8, kernel: int = 5, padding: int = 2, size: int = 32) -> dict:
    """Weights of a ProbeNet: conv1 with varied filter scales, a 10-way fc."""
    pooled = (size + 2 * padding - kernel + 1) // 2
    scales = rng.uniform(0.1, 0.6, size=(filters, 1, 1, 1)).astype(np.float32)
    return {"conv1_weight": _torch(rng, filters, 1, kernel, kernel) * torch.from_numpy(scales),
            "conv1_bias": _torch(rng, filters, scale=0.1), "padding": padding,
            "fc_weight": _torch(rng, 10, filters * pooled * pooled, scale=0.05),
            "fc_bias": _torch(rng, 10, scale=0.1)}


def _model(net: dict):
    return _PROBES.ProbeNet(net).eval()


def _images(rng, n: int, size: int = 32) -> torch.Tensor:
    """Smooth-ish images in [0, 1]: random blobs plus noise, (n, 1, size, size)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, 1, size, size), np.float32)
    for i in range(n):
        cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.3)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        out[i, 0] = np.clip(0.6 * blob + 0.4 * rng.uniform(size=(size, size)), 0, 1)
    return torch.from_numpy(out)


# ====================================================================== to_grayscale

to_grayscale_unit = Unit("to_grayscale", grade_id="test_to_grayscale", points=2, objects=("to_grayscale",),
                         probes=PROBES)


def _rgb(rng, n: int) -> torch.Tensor:
    return torch.from_numpy(rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8))


def _gray_judge(images, what):
    expected = ref.to_grayscale(images)

    def judge(out):
        got = _tensor(out["out"], what)
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


@to_grayscale_unit.check("pure red, green and blue images (luma weights, channel order)")
def _gray_primaries(rng):
    n = 4  # every primary, and red twice
    images = torch.zeros((n, 32, 32, 3), dtype=torch.uint8)
    for i in range(n):
        images[i, ..., i % 3] = int(rng.integers(100, 256))
    return Probe("grayscale", images=images), _gray_judge(images, "pure-colour images")


@to_grayscale_unit.check("random uint8 tensor: shape (N, 1, 32, 32), values in [0, 1]")
def _gray_random(rng):
    images = _rgb(rng, 3)
    return Probe("grayscale", images=images), _gray_judge(images, "random images")


@to_grayscale_unit.check("a NumPy uint8 array works too")
def _gray_numpy(rng):
    images = _rgb(rng, 2)
    return Probe("grayscale", images=images, as_numpy=True), _gray_judge(images, "NumPy input")


check_to_grayscale = to_grayscale_unit.entry_point()


# ====================================================================== SmallCNN

small_cnn_unit = Unit("SmallCNN", grade_id="test_small_cnn", points=2, objects=("SmallCNN",), probes=PROBES)


def _cnn_case(rng):
    # Sizes are fixed (a bug's penalty must not depend on the draw): 3 images, 16 filters.
    return _images(rng, 3), 16


def _cnn_ran(f):
    require("error" not in f, f"on a batch of shape (N, 1, 32, 32): {f.get('error')}")


@small_cnn_unit.check("conv1 is nn.Conv2d(1, 32, ...)")
def _cnn_conv1(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        require(f["is_conv2d"], f"self.conv1 should be an nn.Conv2d, found {f['conv1']}")
        require(f["in_channels"] == 1, f"conv1 takes {f['in_channels']} input channels; the images are grayscale (1)")
        require(f["out_channels"] == 32, f"SmallCNN() has {f['out_channels']} first-layer filters, expected 32")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("logits of shape (N, 10), each image independent of the others")
def _cnn_logits(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        logits = _tensor(f["logits"], "SmallCNN()(x)")
        require(tuple(logits.shape) == (len(x), 10), f"SmallCNN()(x) for x of shape {tuple(x.shape)} gave "
                f"{tuple(logits.shape)}, expected ({len(x)}, 10)")
        require(bool(torch.isfinite(logits).all()), "the logits contain NaN or inf")
        assert_close(f["first_alone"], logits[:1], 1e-4, 1e-4,
                     "the first image alone vs in the batch (eval mode)")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("conv1_filters sets the number of first-layer filters")
def _cnn_custom(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        require(f["custom_out_channels"] == filters,
                f"SmallCNN(conv1_filters={filters}).conv1 has {f['custom_out_channels']} filters")
        require(f["custom_logits_shape"] == [len(x), 10],
                f"SmallCNN(conv1_filters={filters}) gave logits of shape {f['custom_logits_shape']}")
    return Probe("small_cnn", x=x, filters=filters), judge


@small_cnn_unit.check("gradients reach conv1")
def _cnn_grad(rng):
    x, filters = _cnn_case(rng)

    def judge(f):
        _cnn_ran(f)
        require(f["conv1_grad"] is not None and f["conv1_grad"] > 0,
                "after backward() conv1.weight has no gradient: is conv1 used in forward()?")
    return Probe("small_cnn", x=x, filters=filters), judge


check_small_cnn = small_cnn_unit.entry_point()


# ====================================================================== log_run

log_run_unit = Unit("log_run", grade_id="test_log_run", points=2, objects=("log_run",), probes=PROBES)


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
            path.write_bytes(_tensor(data, "event file").numpy().astype(np.uint8).tobytes())
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


@log_run_unit.check("the three tags train/loss, train/accuracy, test/accuracy")
def _log_tags(rng):
    history = _history(rng, 3)

    def judge(files):
        scalars = read_events(files)
        missing = [t for t in ref.TAGS.values() if t not in scalars]
        require(not missing, f"no scalars with the tag(s) {missing}; found {sorted(scalars)}")
    return Probe("log_run", history=history), judge


@log_run_unit.check("one value per epoch at steps 1, 2, ... (read back with tensorboard)")
def _log_values(rng):
    history = _history(rng, 4)
    return Probe("log_run", history=history), _log_judge(history)


@log_run_unit.check("a one-epoch history")
def _log_one(rng):
    history = _history(rng, 1)
    return Probe("log_run", history=history), _log_judge(history)


check_log_run = log_run_unit.entry_point()


# ====================================================================== filter_grid

filter_grid_unit = Unit("filter_grid", grade_id="test_filter_grid", points=2, objects=("filter_grid",),
                        probes=PROBES)


def _filters(rng, n, k):
    scales = rng.uniform(0.05, 2.0, size=(n, 1, 1, 1))
    offsets = rng.normal(0, 1.0, size=(n, 1, 1, 1))
    return torch.from_numpy((rng.normal(size=(n, 1, k, k)) * scales + offsets).astype(np.float32))


def _grid_judge(weights, nrow, what):
    expected = ref.filter_grid(weights, nrow=nrow or 4)

    def judge(out):
        got = _tensor(out["out"], what)
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


@filter_grid_unit.check("16 filters 5x5, nrow=4: shape and per-filter min-max scaling")
def _grid_16(rng):
    weights = _filters(rng, 16, 5)
    return Probe("filter_grid", weights=weights, nrow=4), _grid_judge(weights, 4, "16 filters")


@filter_grid_unit.check("default nrow=4, filters of very different scales")
def _grid_default(rng):
    weights = _filters(rng, 8, 3)
    return Probe("filter_grid", weights=weights), _grid_judge(weights, None, "8 filters, default nrow")


@filter_grid_unit.check("a part-filled last row and a constant filter (all zeros)")
def _grid_partial(rng):
    n = 6  # a last row of 2 (nrow=4)
    weights = _filters(rng, n, 3)
    weights[int(rng.integers(0, n))] = float(rng.normal())
    return Probe("filter_grid", weights=weights, nrow=4), _grid_judge(weights, 4, f"{n} filters")


check_filter_grid = filter_grid_unit.entry_point()


# ====================================================================== activation_stats

activation_stats_unit = Unit("activation_stats", grade_id="test_activation_stats", points=2,
                             objects=("activation_stats",), probes=PROBES)


def _stats_case(rng):
    net = _net(rng, filters=8)
    images = _images(rng, 4)
    mean, std = ref.activation_stats(_model(net), images)
    return net, images, mean, std


def _stats_shapes(out, mean):
    require(len(out) == 2, "expected (mean, std)")
    for what, t in zip(("mean", "std"), out):
        t = _tensor(t, what)
        require(tuple(t.shape) == tuple(mean.shape),
                f"{what} has shape {tuple(t.shape)}, expected {tuple(mean.shape)}: one value per filter, "
                "over all images and positions")


@activation_stats_unit.check("shapes (F,) for mean and std")
def _stats_shape(rng):
    net, images, mean, std = _stats_case(rng)
    return Probe("activation_stats", net=net, images=images), lambda out: _stats_shapes(out, mean)


@activation_stats_unit.check("mean after the ReLU, over all images and positions")
def _stats_mean(rng):
    net, images, mean, std = _stats_case(rng)
    model = _model(net)

    def judge(out):
        _stats_shapes(out, mean)
        got = out[0].double()
        if not torch.allclose(got, mean.double(), atol=1e-4, rtol=1e-3):
            with torch.no_grad():
                raw = model.conv1(images).transpose(0, 1).flatten(1).mean(1)
            require(not torch.allclose(got, raw.double(), atol=1e-4, rtol=1e-3),
                    "the means are those of conv1's output before the ReLU")
            assert_close(out[0], mean, 1e-4, 1e-3, "mean")
    return Probe("activation_stats", net=net, images=images), judge


@activation_stats_unit.check("std after the ReLU, over all images and positions")
def _stats_std(rng):
    net, images, mean, std = _stats_case(rng)
    model = _model(net)

    def judge(out):
        _stats_shapes(out, mean)
        got = out[1].double()
        if not torch.allclose(got, std.double(), atol=1e-4, rtol=1e-3):
            with torch.no_grad():
                act = torch.relu(model.conv1(images))
                raw = model.conv1(images).transpose(0, 1).flatten(1).std(1)
                over_batch = act.std(dim=0).mean(dim=(1, 2))
            require(not torch.allclose(got, raw.double(), atol=1e-4, rtol=1e-3),
                    "the stds are those of conv1's output before the ReLU")
            require(not torch.allclose(got, over_batch.double(), atol=1e-4, rtol=1e-3),
                    "the std is taken over the images only (then averaged over positions); take it over "
                    "all images and positions together")
            assert_close(out[1], std, 1e-4, 1e-3, "std")
    return Probe("activation_stats", net=net, images=images), judge


check_activation_stats = activation_stats_unit.entry_point()


# ====================================================================== maximize_activation

maximize_unit = Unit("maximize_activation", grade_id="test_maximize_activation", points=2,
                     objects=("maximize_activation",), probes=PROBES)


def _max_case(rng):
    net = _net(rng, filters=6)
    steps, lr, seed = 6, float(rng.uniform(60, 150)), int(rng.integers(0, 2 ** 31))
    model = _model(net)
    start = ref.maximize_activation(model, 0, 0, lr, generator=torch.Generator().manual_seed(seed))
    # A filter the ascent moves: one dead on the start noise leaves the image as it was, which
    # would hide every mistake in the ascent itself.
    for f in (int(k) for k in rng.permutation(6)):
        expected = ref.maximize_activation(model, f, steps, lr, generator=torch.Generator().manual_seed(seed))
        if float((expected - start).abs().max()) > 0.05:
            break
    return net, f, steps, lr, seed, expected


def _max_shape(out):
    x = _tensor(out["x"], "the image")
    require(tuple(x.shape) == (1, 1, 32, 32), f"the image has shape {tuple(x.shape)}, expected (1, 1, 32, 32)")
    return x


@maximize_unit.check("image of shape (1, 1, 32, 32) clipped to [0, 1]")
def _max_clip(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        x = _max_shape(out)
        require(float(x.min()) >= 0 and float(x.max()) <= 1,
                f"pixel values from {float(x.min()):.3g} to {float(x.max()):.3g}: clip to [0, 1] after every step")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


@maximize_unit.check("the reference ascent: noise from the generator, x <- clip(x + lr * grad)")
def _max_values(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        x = _max_shape(out)
        assert_close(x, expected, 1e-4, 1e-4, "the optimised image")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


@maximize_unit.check("model weights untouched, model left in eval mode")
def _max_weights(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        _max_shape(out)
        require(out["weights_same"], "the model's weights changed: optimise the image only")
        require(not out["training"], "the model is still in training mode: call model.eval()")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


check_maximize_activation = maximize_unit.entry_point()


# ====================================================================== deconv_project

deconv_unit = Unit("deconv_project", grade_id="test_deconv_project", points=3, objects=("deconv_project",),
                   probes=PROBES)


def _deconv_check(rng, kernel, padding, what):
    net = _net(rng, filters=6, kernel=kernel, padding=padding)
    image = _images(rng, 1)[0]
    f = _live_filter(rng, net, image)
    expected = ref.deconv_project(_model(net), image, f)

    def judge(out):
        got = _tensor(out["out"], what)
        if got.dim() == 4 and got.shape[0] == 1:
            got = got[0]
        require(tuple(got.shape) == tuple(expected.shape),
                f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)} (the image's shape)")
        require(out["unchanged"] and out["weights_same"], f"{what}: the image or the model was modified")
        assert_close(got, expected, 1e-4, 1e-4, what)
    return Probe("deconv", net=net, image=image, filter_index=f), judge


def _live_filter(rng, net, image) -> int:
    """A filter whose pooled map is positive at a quarter of its positions or more (the one
    with most such positions if none is): a dead map projects to zeros, right or wrong."""
    model = _model(net)
    with torch.no_grad():
        fmap = torch.relu(model.conv1(image.reshape(1, 1, *image.shape[-2:])))
        live = (torch.nn.functional.max_pool2d(fmap, 2) > 0).double().mean(dim=(0, 2, 3))
    candidates = [int(k) for k in torch.nonzero(live >= 0.25).flatten()]
    return int(rng.choice(candidates)) if candidates else int(live.argmax())


@deconv_unit.check("5x5 filters, padding 2: unpool with the switches, ReLU, transposed conv")
def _deconv_5(rng):
    return _deconv_check(rng, 5, 2, "projection (5x5 filters)")


@deconv_unit.check("another image and filter (5x5, padding 2)")
def _deconv_5b(rng):
    return _deconv_check(rng, 5, 2, "projection (5x5 filters, second case)")


@deconv_unit.check("3x3 filters without padding (conv1's own stride and padding)")
def _deconv_3(rng):
    return _deconv_check(rng, 3, 0, "projection (3x3 filters, no padding)")


check_deconv_project = deconv_unit.entry_point()


# ====================================================================== occlusion_map

occlusion_unit = Unit("occlusion_map", grade_id="test_occlusion_map", points=3, objects=("occlusion_map",),
                      probes=PROBES)


def _occ_check(rng, patch, stride, fill, what):
    net = _net(rng, filters=6)
    image = _images(rng, 1)[0]
    label = int(rng.integers(0, 10))
    kwargs = {"patch": patch or 8, "stride": stride or 4, "fill": 0.5 if fill is None else fill}
    expected = ref.occlusion_map(_model(net), image, label, **kwargs)

    def judge(out):
        got = _tensor(out["out"], what)
        n = (32 - kwargs["patch"]) // kwargs["stride"] + 1
        require(tuple(got.shape) == tuple(expected.shape),
                f"{what}: map of shape {tuple(got.shape)}, expected {tuple(expected.shape)}: with patch "
                f"{kwargs['patch']} and stride {kwargs['stride']} the patch's top-left corner takes {n} "
                f"positions per axis (the last one touching the border)")
        require(out["unchanged"], f"{what}: the image was modified in place; occlude a copy")
        require(float(got.min()) >= 0 and float(got.max()) <= 1,
                f"{what}: values outside [0, 1]: return softmax probabilities of the true class")
        assert_close(got, expected, 1e-4, 1e-3, what)
    return Probe("occlusion", net=net, image=image, label=label, patch=patch, stride=stride, fill=fill), judge


@occlusion_unit.check("defaults (patch 8, stride 4, fill 0.5): a 7x7 map")
def _occ_default(rng):
    return _occ_check(rng, None, None, None, "occlusion map (defaults)")


@occlusion_unit.check("another patch, stride and fill")
def _occ_other(rng):
    patch, stride = 10, 3  # the last position stops short of the border (22 is not a multiple of 3)
    return _occ_check(rng, patch, stride, float(rng.uniform(0, 1)), f"occlusion map (patch {patch}, stride {stride})")


@occlusion_unit.check("true-class probabilities on a second image")
def _occ_second(rng):
    return _occ_check(rng, 8, 4, 0.5, "occlusion map (second image)")


check_occlusion_map = occlusion_unit.entry_point()


# ====================================================================== RowRNN

row_rnn_unit = Unit("RowRNN", grade_id="test_row_rnn", points=3, objects=("RowRNN",), probes=PROBES)


def _rnn_check(rng, cell, hidden, layers, what):
    torch_rng = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 31)))
    model = ref.RowRNN(cell, hidden, num_layers=layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=torch_rng) * 0.6 - 0.3)
    model.eval()
    n = 3
    x = torch.from_numpy(rng.uniform(0, 1, size=(n, 28, 28)).astype(np.float32))
    with torch.no_grad():
        expected = model(x)
    rnn_state = {k: v.clone() for k, v in model.rnn.state_dict().items()}
    fc_state = {k: v.clone() for k, v in model.fc.state_dict().items()}
    kind = type(model.rnn).__name__

    def judge(f):
        require(f["type"] == kind, f"RowRNN({cell!r}, ...) uses nn.{f['type']}, expected nn.{kind}")
        require(f["input_size"] == 28, f"the recurrent layer takes {f['input_size']} features per step; "
                "each step is one image row of 28 pixels")
        require(f["hidden_size"] == hidden and f["num_layers"] == layers and not f["bidirectional"],
                f"the recurrent layer has hidden size {f['hidden_size']}, {f['num_layers']} layer(s), "
                f"bidirectional={f['bidirectional']}; expected {hidden}, {layers}, False")
        require("load_error" not in f, f"{what}: the recurrent layer's parameters do not fit "
                f"nn.{kind}(28, {hidden}, num_layers={layers}): {f.get('load_error')}")
        got = _tensor(f["logits"], what)
        require(tuple(got.shape) == (n, 10), f"{what}: logits of shape {tuple(got.shape)}, expected ({n}, 10)")
        if not torch.allclose(got.double(), expected.double(), atol=1e-4, rtol=1e-4):
            with torch.no_grad():
                cols = model(x.transpose(1, 2))
                out, _ = model.rnn(x)
                first = model.fc(out[:, 0])
            require(not torch.allclose(got, cols, atol=1e-4), f"{what}: the image is read column by column; "
                    "step t must be row t (x[:, t, :])")
            require(not torch.allclose(got, first, atol=1e-4), f"{what}: the logits come from the first step; "
                    "use the output of the last step")
            assert_close(got, expected, 1e-4, 1e-4, what)
    return Probe("row_rnn", cell=cell, hidden=hidden, layers=layers, rnn_state=rnn_state, fc_state=fc_state,
                 x=x), judge


@row_rnn_unit.check("LSTM: logits from the last row step")
def _rnn_lstm(rng):
    hidden = 12
    return _rnn_check(rng, "lstm", hidden, 1, f"RowRNN('lstm', {hidden})")


@row_rnn_unit.check("GRU and tanh RNN cells")
def _rnn_gru(rng):
    h1, h2 = 10, 8
    probes_a, judge_a = _rnn_check(rng, "gru", h1, 1, f"RowRNN('gru', {h1})")
    probes_b, judge_b = _rnn_check(rng, "rnn", h2, 1, f"RowRNN('rnn', {h2})")

    def judge(outs):
        judge_a(outs[0])
        judge_b(outs[1])
    return [probes_a, probes_b], judge


@row_rnn_unit.check("two stacked layers (num_layers=2)")
def _rnn_two(rng):
    hidden, cell = 10, "gru"  # not LSTM: a model that always builds an LSTM fails here too
    return _rnn_check(rng, cell, hidden, 2, f"RowRNN({cell!r}, {hidden}, num_layers=2)")


check_row_rnn = row_rnn_unit.entry_point()

UNITS = {u.grade_id: u for u in (to_grayscale_unit, small_cnn_unit, log_run_unit, filter_grid_unit,
                                 activation_stats_unit, maximize_unit, deconv_unit, occlusion_unit, row_rnn_unit)}
