"""Timings of a3_char_lm on this machine, with the machine's load printed beside them.

1. the full solution notebook, executed top to bottom (nbconvert, kernel start included);
2. one submission (the solution) autograded by `nbgrader autograde` in a fresh course,
   hidden checks included;
3. with ``--epoch``: one full epoch over the Shakespeare training text of an LSTM and a GRU
   (128 units, sequences of 50, batch 64, one thread, as the notebook trains), so that the
   coursework's setting (20 such epochs) can be priced from a measurement.

    python benchmarks/a3_timings.py [--epoch] [--skip-notebook] [--skip-grading]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursectl.nbg import nbgrader_env

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
A = "a3_char_lm"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def _timed(cmd, cwd, env=None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env or nbgrader_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def notebook_seconds(tmp: Path) -> float:
    src = REPO / "source" / A / f"{A}.ipynb"
    env = dict(nbgrader_env(), MPLBACKEND="Agg")
    env.pop("NBGRADER_EXECUTION", None)
    env.pop("COURSE_QUICK", None)
    return _timed([BIN / "jupyter", "nbconvert", "--to", "notebook", "--execute", str(src), "--output",
                   str(tmp / "executed.ipynb"), "--ExecutePreprocessor.timeout=900"], src.parent, env)


def autograde_seconds(tmp: Path) -> float:
    course = tmp / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source" / A, course / "source" / A)
    _timed([BIN / "nbgrader", "generate_assignment", A, "--force"], course)
    dest = course / "submitted" / "solution" / A
    dest.mkdir(parents=True)
    shutil.copy(REPO / "source" / A / f"{A}.ipynb", dest)
    return _timed([BIN / "nbgrader", "autograde", A, "--force"], course)


def epoch_seconds(cell: str) -> tuple[float, int]:
    import torch
    from torch.nn import functional as F

    from autograder.a3_char_lm.reference import CharModel
    from coursekit.charlm import chunk, load_shakespeare

    torch.set_num_threads(1)
    corpus = load_shakespeare(verbose=False)
    x, y = chunk(corpus.ids[: int(len(corpus.ids) * 0.9)], 50)
    torch.manual_seed(0)
    model = CharModel(len(corpus.chars), 128, cell=cell, embedding_dim=32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    for i in range(0, len(x), 64):
        logits, _ = model(x[i:i + 64])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[i:i + 64].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start, x.numel()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epoch", action="store_true", help="also time one full training epoch (LSTM and GRU)")
    ap.add_argument("--skip-notebook", action="store_true")
    ap.add_argument("--skip-grading", action="store_true")
    args = ap.parse_args()
    print(f"a3_char_lm timings; before: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_notebook:
            s = notebook_seconds(tmp)
            print(f"full solution notebook (nbconvert --execute): {s:6.1f} s   [{load()}]")
        if not args.skip_grading:
            s = autograde_seconds(tmp)
            print(f"nbgrader autograde, one submission:           {s:6.1f} s   [{load()}]")
    if args.epoch:
        for cell in ("lstm", "gru"):
            s, chars = epoch_seconds(cell)
            print(f"one epoch, {cell} 128 units, T=50, batch 64 ({chars:,} characters): {s:6.1f} s "
                  f"-> 20 epochs ~{20 * s / 60:.0f} min   [{load()}]")


if __name__ == "__main__":
    main()
