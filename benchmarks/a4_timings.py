"""Timings of a4_visualizing on this machine, printed with the machine's load.

1. the full solution notebook on the offline data, executed top to bottom by nbconvert
   (kernel start included), with the per-run lines the notebook prints (accuracies, seconds
   per epoch and the cost of a full CIFAR-10 / MNIST epoch extrapolated from them);
2. one submission (the solution) autograded by `nbgrader autograde` in a fresh course,
   hidden checks included (the notebook shrinks itself under NBGRADER_EXECUTION).

    python benchmarks/a4_timings.py [--skip-notebook] [--skip-grading]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from coursectl.nbg import nbgrader_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
A = "a4_visualizing"
REPORTED = ("baseline", "tuning", "rnn-runs", "optimizers")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


LAST_CPU = [0.0]


def _run(cmd, cwd, env) -> float:
    """Wall seconds of ``cmd``; its CPU seconds (children included) go to LAST_CPU. The notebooks
    train on one thread, so on an idle machine the wall time is close to the CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start


def full_notebook(tmp: Path) -> float:
    src = REPO / "source" / A / f"{A}.ipynb"
    env = dict(nbgrader_env(), MPLBACKEND="Agg")
    env.pop("NBGRADER_EXECUTION", None)
    env.pop("COURSE_QUICK", None)
    out = tmp / "executed.ipynb"
    seconds = _run([BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", str(src), "--output", str(out),
                    "--ExecutePreprocessor.timeout=900"], tmp, env)
    nb = nbformat.read(out, as_version=4)
    for cell in nb.cells:
        if cell.get("id") in REPORTED:
            for o in cell.get("outputs", []):
                if o.get("output_type") == "stream" and o.get("name") == "stdout":
                    print("   ", o["text"].rstrip().replace("\n", "\n    "))
    return seconds


def one_autograde(tmp: Path) -> float:
    course = tmp / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source" / A, course / "source" / A)
    env = nbgrader_env()
    _run([BIN / "nbgrader", "generate_assignment", A, "--force"], course, env)
    dest = course / "submitted" / "solution" / A
    dest.mkdir(parents=True)
    shutil.copy(REPO / "source" / A / f"{A}.ipynb", dest)
    return _run([BIN / "nbgrader", "autograde", A, "--force"], course, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebook", action="store_true")
    parser.add_argument("--skip-grading", action="store_true")
    args = parser.parse_args()
    import data_scripts

    for name in ("cifar10", "mnist"):   # built once beforehand, as `course data` does
        data_scripts.build_offline(name)
    print(f"before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_notebook:
            print("full solution notebook (offline data):")
            seconds = full_notebook(Path(tmp))
            print(f"  {seconds:.0f} s wall, {LAST_CPU[0]:.0f} s CPU   ({load()})")
        if not args.skip_grading:
            seconds = one_autograde(Path(tmp))
            print(f"one submission, nbgrader autograde (hidden checks included): {seconds:.1f} s wall, "
                  f"{LAST_CPU[0]:.1f} s CPU   ({load()})")


if __name__ == "__main__":
    main()
