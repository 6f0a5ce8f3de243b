"""The one registry of assignments (coursectl/assignments.py) and datasets
(data_scripts/registry.py): every list the release, the demo, `course data` and the tests
use comes from them, so they must describe what is really in the repository."""
from __future__ import annotations

import subprocess
import sys

import pytest

import data_scripts
from coursectl import cli
from coursectl.assignments import ASSIGNMENTS, all_datasets, get
from nbcourse import REPO


@pytest.mark.parametrize("name", list(ASSIGNMENTS))
def test_each_assignment_has_its_files(name):
    spec = get(name)
    assert (REPO / "source" / name / f"{name}.ipynb").is_file()
    assert (REPO / "release" / name / f"{name}.ipynb").is_file()
    assert any((REPO / "tests" / "mutants" / spec.mutants).glob("*.py"))
    for dataset in spec.datasets:
        ds = data_scripts.datasets()[dataset]
        assert ds.build_offline is not None and ds.fetch_real is not None, dataset


def test_every_dataset_belongs_to_an_assignment_and_has_pinned_downloads():
    assert set(all_datasets()) == set(data_scripts.datasets())
    assert data_scripts.offline_names() == sorted(all_datasets())
    for spec in data_scripts.datasets().values():
        pins = [data_scripts.REGISTRY[f] for f in spec.files] if spec.files else [spec]
        assert all(len(p.sha256) == 64 and p.url.startswith("http") and p.filename for p in pins), spec.name


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="known: a1_rnn_cells"):
        get("a9_nothing")
    with pytest.raises(KeyError, match="no offline stand-in for 'nope'; known: .*cifar10"):
        data_scripts.build_offline("nope")


@pytest.mark.parametrize("module", ["data_scripts.cifar", "data_scripts.mnist", "data_scripts.fashion_mnist"])
def test_dataset_modules_import_on_their_own(module):
    """No import cycle: each image module imports alone in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_release_all_releases_every_registered_assignment(monkeypatch, tmp_path):
    import coursectl.nbg as nbg

    released = []
    monkeypatch.setattr(nbg, "release", lambda course, name: released.append(name) or tmp_path / name)
    monkeypatch.setattr(cli, "find_course_root", lambda _: tmp_path)
    cli.main(["release", "all"])
    assert released == list(ASSIGNMENTS)
