"""a4_visualizing's hidden checks for activation_stats, maximize_activation, deconv_project, occlusion_map and RowRNN (see ``checks``)."""
from __future__ import annotations

import numpy as np
import torch

from .. import probes
from .. import reference as ref
from ...harness import Probe, Unit, assert_close, close_or_known_mistake, require, tensor_of
from .common import _images, _model, _net


activation_stats_unit = Unit("activation_stats", grade_id="test_activation_stats", objects=("activation_stats",),
                             probes=probes)


def _stats_case(rng):
    net = _net(rng, filters=8)
    images = _images(rng, 4)
    mean, std = ref.activation_stats(_model(net), images)
    return net, images, mean, std


def _stats_shapes(out, mean):
    require(len(out) == 2, "expected (mean, std)")
    for what, t in zip(("mean", "std"), out):
        t = tensor_of(t, what)
        require(tuple(t.shape) == tuple(mean.shape),
                f"{what} has shape {tuple(t.shape)}, expected {tuple(mean.shape)}: one value per filter, "


                "over all images and positions")


@activation_stats_unit.check("shapes (F,) for mean and std", weight=1)
def _stats_shape(rng):
    net, images, mean, std = _stats_case(rng)
    return Probe("activation_stats", net=net, images=images), lambda out: _stats_shapes(out, mean)


def _stats_check(index: int, what: str, mistakes):
    """The judge of the mean (index 0) or std (1): right, or which typical mistake it is.
    ``mistakes(conv1 output, its ReLU)`` -> [(what that mistake gives, message), ...]."""
    def check(rng):
        net, images, mean, std = _stats_case(rng)
        model = _model(net)

        def judge(out):
            _stats_shapes(out, mean)
            with torch.no_grad():
                raw = model.conv1(images)
            close_or_known_mistake(out[index], (mean, std)[index], 1e-4, 1e-3, what,
                                   mistakes(raw, torch.relu(raw)))
        return Probe("activation_stats", net=net, images=images), judge
    return check


def _per_filter(t):
    return t.transpose(0, 1).flatten(1)  # (F, images * positions)


activation_stats_unit.check("mean after the ReLU, over all images and positions", weight=1)(_stats_check(
    0, "mean", lambda raw, act: [(_per_filter(raw).mean(1), "the means are those of conv1's output before the ReLU")]))
activation_stats_unit.check("std after the ReLU, over all images and positions", weight=1)(_stats_check(
    1, "std", lambda raw, act: [
        (_per_filter(raw).std(1), "the stds are those of conv1's output before the ReLU"),
        (act.std(dim=0).mean(dim=(1, 2)), "the std is taken over the images only (then averaged over positions); "
                                          "take it over all images and positions together")]))


check_activation_stats = activation_stats_unit.entry_point()


# ====================================================================== maximize_activation

maximize_unit = Unit("maximize_activation", grade_id="test_maximize_activation", objects=("maximize_activation",),
                     probes=probes)


# Pixels of the expected image strictly inside (0, 1): there the image still carries its
# start noise and every step's gradient. With the large steps the ascent takes, a draw can
# clip nearly every pixel to 0 or 1, and an image grown from other noise or by a model whose
# weights moved then matched it: 3 draws in 200 clipped every pixel, 10 all but 2%.
MIN_OPEN_PIXELS = 0.1


def _open_share(image) -> float:
    return float(((image > 0.01) & (image < 0.99)).float().mean())


def _max_case(rng):
    """A net, a filter and an ascent (steps, lr, seed) whose image the filter moves and
    leaves open (MIN_OPEN_PIXELS), with the reference's image."""
    while True:
        net = _net(rng, filters=6)
        steps, lr, seed = 6, float(rng.uniform(60, 150)), int(rng.integers(0, 2 ** 31))
        model = _model(net)
        start = ref.maximize_activation(model, 0, 0, lr, generator=torch.Generator().manual_seed(seed))
        # A filter the ascent moves: one dead on the start noise leaves the image as it was, which
        # would hide every mistake in the ascent itself.
        for f in (int(k) for k in rng.permutation(6)):
            expected = ref.maximize_activation(model, f, steps, lr, generator=torch.Generator().manual_seed(seed))
            if float((expected - start).abs().max()) > 0.05 and _open_share(expected) >= MIN_OPEN_PIXELS:
                return net, f, steps, lr, seed, expected


def _max_shape(out):
    x = tensor_of(out["x"], "the image")
    require(tuple(x.shape) == (1, 1, 32, 32), f"the image has shape {tuple(x.shape)}, expected (1, 1, 32, 32)")
    return x


@maximize_unit.check("image of shape (1, 1, 32, 32) clipped to [0, 1]", weight=1)
def _max_clip(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        x = _max_shape(out)
        require(float(x.min()) >= 0 and float(x.max()) <= 1,
                f"pixel values from {float(x.min()):.3g} to {float(x.max()):.3g}: clip to [0, 1] after every step")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


@maximize_unit.check("the reference ascent: noise from the generator, x <- clip(x + lr * grad)", weight=1)
def _max_values(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        x = _max_shape(out)
        assert_close(x, expected, 1e-4, 1e-4, "the optimised image")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


@maximize_unit.check("model weights untouched, model left in eval mode", weight=1)
def _max_weights(rng):
    net, f, steps, lr, seed, expected = _max_case(rng)

    def judge(out):
        _max_shape(out)
        require(out["weights_same"], "the model's weights changed: optimise the image only")
        require(not out["training"], "the model is still in training mode: call model.eval()")
    return Probe("maximize", net=net, filter_index=f, steps=steps, lr=lr, seed=seed), judge


check_maximize_activation = maximize_unit.entry_point()


# ====================================================================== deconv_project

deconv_unit = Unit("deconv_project", grade_id="test_deconv_project", objects=("deconv_project",),
                   probes=probes)


def _deconv_check(rng, kernel, padding, what):
    net = _net(rng, filters=6, kernel=kernel, padding=padding)
    image = _images(rng, 1)[0]
    f = _live_filter(rng, net, image)
    expected = ref.deconv_project(_model(net), image, f)

    def judge(out):
        got = tensor_of(out["out"], what)
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


@deconv_unit.check("5x5 filters, padding 2: unpool with the switches, ReLU, transposed conv", weight=1)
def _deconv_5(rng):
    return _deconv_check(rng, 5, 2, "projection (5x5 filters)")


@deconv_unit.check("another image and filter (5x5, padding 2)", weight=1)
def _deconv_5b(rng):
    return _deconv_check(rng, 5, 2, "projection (5x5 filters, second case)")


@deconv_unit.check("3x3 filters without padding (conv1's own stride and padding)", weight=1)
def _deconv_3(rng):
    return _deconv_check(rng, 3, 0, "projection (3x3 filters, no padding)")


check_deconv_project = deconv_unit.entry_point()


# ====================================================================== occlusion_map

occlusion_unit = Unit("occlusion_map", grade_id="test_occlusion_map", objects=("occlusion_map",),
                      probes=probes)


# The true class is one the net gives at least this probability on the whole image, and
# occluding must move it by OCC_MIN_RANGE somewhere: a class at 1e-4 left every map within
# the check's tolerance, so a patch one pixel short passed on about 1 draw in 100.
OCC_MIN_PROB, OCC_MIN_RANGE = 0.05, 0.01


def _occ_case(rng, kwargs):
    """A net, an image, a true class and the reference's map, drawn until the map shows."""
    while True:
        net = _net(rng, filters=6)
        image = _images(rng, 1)[0]
        model = _model(net)
        with torch.no_grad():
            probs = torch.softmax(model(image[None]), dim=1)[0]
        likely = [c for c in range(10) if float(probs[c]) >= OCC_MIN_PROB]  # never empty: 10 classes
        label = likely[int(rng.integers(0, len(likely)))]
        expected = ref.occlusion_map(model, image, label, **kwargs)
        if float(expected.max() - expected.min()) >= OCC_MIN_RANGE:
            return net, image, label, expected


def _occ_check(rng, patch, stride, fill, what):
    kwargs = {"patch": patch or 8, "stride": stride or 4, "fill": 0.5 if fill is None else fill}
    net, image, label, expected = _occ_case(rng, kwargs)

    def judge(out):
        got = tensor_of(out["out"], what)
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


@occlusion_unit.check("defaults (patch 8, stride 4, fill 0.5): a 7x7 map", weight=1)
def _occ_default(rng):
    return _occ_check(rng, None, None, None, "occlusion map (defaults)")


@occlusion_unit.check("another patch, stride and fill", weight=1)
def _occ_other(rng):
    patch, stride = 10, 3  # the last position stops short of the border (22 is not a multiple of 3)
    return _occ_check(rng, patch, stride, float(rng.uniform(0, 1)), f"occlusion map (patch {patch}, stride {stride})")


@occlusion_unit.check("true-class probabilities on a second image", weight=1)
def _occ_second(rng):
    return _occ_check(rng, 8, 4, 0.5, "occlusion map (second image)")


check_occlusion_map = occlusion_unit.entry_point()


# ====================================================================== RowRNN

row_rnn_unit = Unit("RowRNN", grade_id="test_row_rnn", objects=("RowRNN",), probes=probes)


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
        got = tensor_of(f["logits"], what)
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


@row_rnn_unit.check("LSTM: logits from the last row step", weight=1)
def _rnn_lstm(rng):
    hidden = 12
    return _rnn_check(rng, "lstm", hidden, 1, f"RowRNN('lstm', {hidden})")


@row_rnn_unit.check("GRU and tanh RNN cells", weight=1)
def _rnn_gru(rng):
    h1, h2 = 10, 8
    probes_a, judge_a = _rnn_check(rng, "gru", h1, 1, f"RowRNN('gru', {h1})")
    probes_b, judge_b = _rnn_check(rng, "rnn", h2, 1, f"RowRNN('rnn', {h2})")

    def judge(outs):
        judge_a(outs[0])
        judge_b(outs[1])
    return [probes_a, probes_b], judge


@row_rnn_unit.check("two stacked layers (num_layers=2)", weight=1)
def _rnn_two(rng):
    hidden, cell = 10, "gru"  # not LSTM: a model that always builds an LSTM fails here too
    return _rnn_check(rng, cell, hidden, 2, f"RowRNN({cell!r}, {hidden}, num_layers=2)")


check_row_rnn = row_rnn_unit.entry_point()
