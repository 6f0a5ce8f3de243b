"""The course's own environment gets "Submit for feedback" from `make setup`'s step
`python -m coursekit.feedback_ext install $(VENV)` (an editable install places no data
files): on a fresh venv that step makes `jupyter labextension list` and the server
extension list show it enabled, where they did not before."""
from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

from coursekit import feedback_ext
from nbcourse import REPO


def _fresh_venv(where: Path) -> Path:
    """A venv that sees this one's packages through a path file, but has its own prefix
    (so its own share/jupyter and etc/jupyter)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    py = where / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this venv's packages, and this checkout (its editable install is a path file there, not read from here)
    Path(site, "_course_packages.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{REPO}\n")
    return py


def _lists(py: Path, cwd: Path) -> tuple[str, str]:
    env = {"PATH": f"{py.parent}:/usr/bin:/bin", "HOME": str(cwd), "JUPYTER_CONFIG_DIR": str(cwd / "jupyter")}
    lab = subprocess.run([str(py), "-m", "jupyterlab.labextensions", "list"], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=120)
    server = subprocess.run([str(py), "-m", "jupyter_server.extension.serverextension", "list"],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    plain = lambda text: re.sub(r"\x1b\[[0-9;]*m", "", text)  # noqa: E731  (no colours)
    return plain(lab.stdout + lab.stderr), plain(server.stdout + server.stderr)


def _enabled(listing: str, name: str) -> bool:
    return any(name in line and "enabled" in line for line in listing.splitlines())


def test_setup_step_installs_and_enables_it_in_a_fresh_venv(tmp_path):
    assert "-m coursekit.feedback_ext install $(VENV)" in (REPO / "Makefile").read_text()
    py = _fresh_venv(tmp_path / "venv")
    lab, server = _lists(py, tmp_path)
    assert not _enabled(lab, feedback_ext.LAB_EXTENSION) and not _enabled(server, feedback_ext.EXTENSION)

    subprocess.run([str(py), "-m", "coursekit.feedback_ext", "install", str(tmp_path / "venv")], check=True,
                   capture_output=True, cwd=tmp_path)
    lab, server = _lists(py, tmp_path)
    assert _enabled(lab, feedback_ext.LAB_EXTENSION) and " OK" in lab, lab
    assert str(tmp_path / "venv" / "share" / "jupyter" / "labextensions") in lab
    assert _enabled(server, feedback_ext.EXTENSION), server
    # installing again replaces the old build (its hashed file names would otherwise pile up)
    stale = tmp_path / "venv" / "share" / "jupyter" / "labextensions" / feedback_ext.LAB_EXTENSION / "static" / "old.js"
    stale.write_text("")
    subprocess.run([str(py), "-m", "coursekit.feedback_ext", "install", str(tmp_path / "venv")], check=True,
                   capture_output=True, cwd=tmp_path)
    assert not stale.exists()


def test_the_committed_build_matches_its_sources():
    """coursekit/labextension is labextension/'s build: same name and version, and a
    remote entry that exists (rebuild with `cd labextension && npm run build`)."""
    import json

    source = json.loads((REPO / "labextension" / "package.json").read_text())
    built = json.loads((feedback_ext.LAB_BUILD / "package.json").read_text())
    assert (built["name"], built["version"]) == (source["name"], source["version"]) == \
        (feedback_ext.LAB_EXTENSION, built["version"])
    assert (feedback_ext.LAB_BUILD / built["jupyterlab"]["_build"]["load"]).is_file()
