"""a4's figures show their lesson on the offline data, in the recorded run of the solution.

``benchmarks/record_runs.py a4_visualizing`` executes the solution notebook and keeps the
first-layer filters (trained and untrained), the occlusion examples and the figures' PNGs
(``benchmarks/results/a4_visualizing/``, each with its SHA-256 in the recording;
tests/assignments/test_quoted_numbers.py checks the recording is of the current code).
Here: the trained filters are measurably smoother (edges, bars, blobs) than the untrained
noise, the occlusion examples are confidently right and their maps not flat, the epoch axes
have whole-number ticks, and the PNGs, opened in headless Chromium, show; the screenshot is
kept in the test's tmp folder.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os

import pytest

from nbcourse import REPO

A = "a4_visualizing"
RESULTS = REPO / "benchmarks" / "results"


def _recorder():
    spec = importlib.util.spec_from_file_location("record_runs", REPO / "benchmarks" / "record_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def recording():
    path = RESULTS / f"{A}.json"
    assert path.exists(), f"no recording: run python benchmarks/record_runs.py {A}"
    return json.loads(path.read_text())


def test_structure_measure_tells_edges_from_noise():
    """The measure itself: a smooth edge scores high, independent noise about 0."""
    import torch

    measure = _recorder().filter_structure
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(32, 1, 5, 5, generator=gen)
    ramp = torch.linspace(-1, 1, 5)
    edges = torch.stack([ramp[None, :].expand(5, 5), ramp[:, None].expand(5, 5)] * 16)[:, None]
    assert abs(measure(noise)) < 0.15 and measure(edges) > 0.7


def test_trained_filters_are_visibly_structured_next_to_untrained(recording):
    """The figure shows the student's filters (a few epochs), the same network's trained longer
    offline (shipped, coursekit/assets) and untrained ones: the longer-trained must be clearly
    structured, the student's at least on their way."""
    measure = _recorder().filter_structure
    values = recording["values"]
    yours, longer = measure(values["filters_trained"]), measure(values["filters_longer"])
    untrained = measure(values["filters_untrained"])
    assert untrained < 0.15, f"untrained filters should be noise, structure {untrained:.2f}"
    assert longer > 0.4 and longer > untrained + 0.3, \
        f"filters trained longer look like noise: neighbour correlation {longer:.2f} vs {untrained:.2f} untrained"
    assert yours > untrained + 0.1, f"the notebook's own trained filters did not move: {yours:.2f} vs {untrained:.2f}"


def test_shipped_filters_match_their_pinned_digest():
    from coursekit.vision import trained_longer_filters

    filters, how = trained_longer_filters()
    assert tuple(filters.shape) == (32, 1, 5, 5) and how["made_by"] == "benchmarks/train_a4_filters.py"
    assert (REPO / how["made_by"]).exists()


def test_occlusion_examples_are_confidently_right_and_their_maps_not_flat(recording):
    examples = recording["values"]["occlusion"]
    assert len(examples) == 4
    for e in examples:
        heat = [v for row in e["heat"] for v in row]
        assert e["p"] >= 0.9, f"test image {e['index']} ({e['label']}): p(true) {e['p']:.2f}, not a confident example"
        assert e["p"] - min(heat) >= 0.2, \
            f"test image {e['index']} ({e['label']}): no patch lowers p(true) by 0.2 (a flat map)"
        assert max(heat) - min(heat) >= 0.2, f"test image {e['index']}: map nearly flat"


def test_epoch_axes_have_whole_number_ticks():
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib.pyplot as plt

    from coursekit.vision import plot_curves

    history = {"train_loss": [1.0, 0.8, 0.7], "train_accuracy": [0.5, 0.6, 0.7], "test_accuracy": [0.5, 0.55, 0.6]}
    fig = plot_curves({"run": history, "other": history}, "ticks")
    try:
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            shown = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert shown and all(float(t).is_integer() for t in shown), f"{ax.get_title()}: ticks {shown}"
    finally:
        plt.close(fig)


def test_figures_are_the_recorded_ones(recording):
    for name, digest in recording["figures"].items():
        data = (RESULTS / A / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} is not the recorded run's figure"
    assert {"filters.png", "occlusion.png"} <= set(recording["figures"])


@pytest.mark.slow  # starts headless Chromium (a few seconds)
def test_screenshot_of_the_figures(recording, tmp_path):
    import io
    import shutil
    import sys

    from PIL import Image

    sys.path.insert(0, str(REPO / "tests"))
    from test_browser import _chromium, start_driver

    found = _chromium()
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("needs Debian's chromium and chromium-driver and selenium")
        pytest.skip("needs Debian's chromium and chromium-driver and selenium")
    page = tmp_path / "figures.html"
    for name in recording["figures"]:
        shutil.copy(RESULTS / A / name, tmp_path / name)
    page.write_text("<html><body style='background:white'><style>img{max-width:100%}</style>" + "".join(
        f"<figure><img id='{n.split('.')[0]}' src='{n}'><figcaption>{n}</figcaption></figure>"
        for n in recording["figures"]) + "</body></html>")
    driver = start_driver(found, tmp_path / "profile", ("--window-size=1200,2400",))
    try:
        driver.get(page.as_uri())
        sizes = driver.execute_script(
            "return Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth, i.naturalHeight]);")
        shot = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    (tmp_path / "a4_figures_screenshot.png").write_bytes(shot)   # the artifact to look at
    assert all(ok and w > 100 and h > 100 for _, ok, w, h in sizes), sizes
    gray = Image.open(io.BytesIO(shot)).convert("L")
    top = gray.crop((0, 0, gray.width, 420))       # the filter grids, first on the page
    extrema = top.getextrema()
    assert extrema[1] - extrema[0] > 200, f"the filter figure did not render: gray levels {extrema}"
