"""How long the solution notebooks take, part by part, on this machine.

Runs each assignment's solution notebook (``source/<a>/<a>.ipynb``) in a real kernel on the
offline stand-in data, first as a student runs it, then as nbgrader runs it while grading
(``NBGRADER_EXECUTION`` set: training shrinks), and prints seconds per part (the notebook's
``## N.`` sections), each part's share of the run, and the ratio between the two runs::

    python benchmarks/notebook_times.py                      # a1 and a2
    python benchmarks/notebook_times.py a1_rnn_cells --cold  # without the feature caches
    python benchmarks/notebook_times.py --save runs/         # also keep the executed notebooks

``--cold`` copies the datasets to a temporary data folder without their caches (MFCC
features, tokenised reviews), so the first-run cost shows in part 1. The machine's cores
and load average (before and after) are printed with the times: on a shared machine the
times scale with the load, the ratios much less.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("a1_rnn_cells", "a2_sentiment")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores ({cpu}), Python {platform.python_version()}"


def _load() -> str:
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def _parts(nb) -> list[tuple[str, float]]:
    """(part title, seconds) from nbclient's per-cell timing, grouped under '## ' headings."""
    parts: list[list] = [["setup", 0.0]]
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^## (.+)$", cell.source, re.M)
            if m:
                parts.append([m.group(1).strip(), 0.0])
            continue
        timing = cell.metadata.get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            parts[-1][1] += (datetime.fromisoformat(end.replace("Z", "+00:00"))
                             - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    return [(title, secs) for title, secs in parts if secs > 0 or title != "setup"]


def run_notebook(assignment: str, grading: bool, timeout: int, env_extra: dict[str, str]):
    """Execute the solution notebook in a scratch copy of its folder; (wall seconds, notebook)."""
    import nbformat
    from nbclient import NotebookClient

    src = REPO / "source" / assignment
    with tempfile.TemporaryDirectory(prefix=f"{assignment}-") as tmp:
        work = Path(tmp) / assignment
        shutil.copytree(src, work)
        nb = nbformat.read(work / f"{assignment}.ipynb", as_version=4)
        saved = {k: os.environ.get(k) for k in ("NBGRADER_EXECUTION", "MPLBACKEND", *env_extra)}
        os.environ.update(env_extra)
        os.environ["MPLBACKEND"] = "Agg"
        if grading:
            os.environ["NBGRADER_EXECUTION"] = "autograde"
        else:
            os.environ.pop("NBGRADER_EXECUTION", None)
        try:
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(work)}})
            start = time.perf_counter()
            client.execute()
            return time.perf_counter() - start, nb
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _cold_data_dir(tmp: Path) -> Path:
    """A copy of the datasets without their caches (features/, cache/)."""
    sys.path.insert(0, str(REPO))
    from coursekit.paths import data_dir

    src = data_dir()
    if not src.is_dir():
        raise SystemExit(f"no data at {src}: run `course data --offline` first")
    dest = tmp / "data"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("features", "cache", "*.npz"))
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("assignments", nargs="*", default=list(ASSIGNMENTS), help="default: a1 and a2")
    ap.add_argument("--cold", action="store_true", help="run without the feature caches (first-run cost)")
    ap.add_argument("--no-grading", action="store_true", help="skip the NBGRADER_EXECUTION run")
    ap.add_argument("--timeout", type=int, default=900, help="per-cell timeout in seconds (default 900)")
    ap.add_argument("--save", type=Path, help="write the executed notebooks (student run) into this folder")
    args = ap.parse_args(argv)
    unknown = [a for a in args.assignments if not (REPO / "source" / a / f"{a}.ipynb").exists()]
    if unknown:
        ap.error(f"no solution notebook for {', '.join(unknown)} under source/")

    print(f"machine: {_machine()}; {_load()} at start")
    with tempfile.TemporaryDirectory(prefix="nbtimes-") as tmp:
        env = {"COURSE_DATA_DIR": str(_cold_data_dir(Path(tmp)))} if args.cold else {}
        for a in args.assignments:
            full, nb = run_notebook(a, grading=False, timeout=args.timeout, env_extra=env)
            if args.save:
                import nbformat

                args.save.mkdir(parents=True, exist_ok=True)
                nbformat.write(nb, args.save / f"{a}.ipynb")
            print(f"\n{a}: {full:.1f} s as a student runs it" + (" (cold caches)" if args.cold else ""))
            for title, secs in _parts(nb):
                print(f"  {secs:7.1f} s  {100 * secs / full:5.1f}%  {title}")
            if not args.no_grading:
                quick, _ = run_notebook(a, grading=True, timeout=args.timeout, env_extra=env)
                print(f"  under NBGRADER_EXECUTION: {quick:.1f} s (the full run takes {full / quick:.1f}x as long)")
            print(f"  ({_load()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
