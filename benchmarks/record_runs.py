"""Record what the solution notebooks of a3 and a4 print, so that the text can quote it.

Executes ``source/<a>/<a>.ipynb`` top to bottom (offline data, one kernel, as a student would
run it), then one extra cell in the same kernel that reads the notebook's own variables and
prints them as JSON. The results go to ``benchmarks/results/<a>.json`` (and for a4 the figures
to ``benchmarks/results/<a>/*.png``), with the machine, the date, the total run time and a
fingerprint of the notebook's code cells. The notebooks' markdown quotes these numbers with a
``<!-- recorded: KEY ... -->`` marker; tests/assignments/test_quoted_numbers.py fails when a
quoted number and the recording disagree, or when the notebook's code changed since the
recording (then run this again and update the text it contradicts).

    python benchmarks/record_runs.py a3_char_lm a4_visualizing
"""
from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MARK = "@@RECORDED@@"

# The extra cell per assignment: the notebook's own variables, as plain JSON values.
RECORDERS = {
    "a3_char_lm": """
import json as _json
_rec = {"part1": [dict(r) for r in part1], "part2": [dict(r) for r in part2],
        "full_epoch_chars": len(train_ids2), "cpu_marks": _cpu_marks}
print(%r + _json.dumps(_rec, default=lambda o: o.tolist() if hasattr(o, 'tolist') else float(o)))
""",
    "a4_visualizing": """
import json as _json
_rec = {
    "tuning": {k: {"val": h["val_accuracy"], "test": h["test_accuracy"][-1], "seconds": h["seconds"]}
               for k, (_m, h) in runs.items()},
    "best": best,   # (later cells reuse the names before/after: read the runs themselves)
    "before": runs["baseline"][1]["test_accuracy"][-1], "after": runs[best][1]["test_accuracy"][-1],
    "rnn_runs": {k: {"test": h["test_accuracy"][-1], "seconds": h["seconds"]} for k, h in rnn_runs.items()},
    "opt_runs": {k: {"test": h["test_accuracy"][-1]} for k, h in opt_runs.items()},
    "filters_trained": filters.tolist(), "filters_untrained": untrained.tolist(), "filters_longer": longer.tolist(),
    "occlusion": [{"index": i, "label": CLASSES[lab], "p": p, "heat": heat.tolist()}
                  for i, lab, p, heat in occlusion_examples],
    "cpu_marks": _cpu_marks,
}
print(%r + _json.dumps(_rec, default=lambda o: o.tolist() if hasattr(o, 'tolist') else float(o)))
""",
}
# Figures worth looking at (cell id -> file name under benchmarks/results/<a>/).
FIGURES = {"a4_visualizing": {"show-filters": "filters.png", "show-occlusion": "occlusion.png",
                              "baseline": "baseline_curves.png"}}


def filter_structure(filters) -> float:
    """How spatially smooth first-layer filters are: the mean correlation of each filter's
    values with their right and lower neighbours (mean removed per filter). Independent
    noise (an untrained layer) gives about 0; edges, bars and blobs give clearly more."""
    import torch

    w = torch.as_tensor(filters, dtype=torch.float64)[:, 0]
    w = w - w.mean(dim=(1, 2), keepdim=True)
    var = (w * w).mean(dim=(1, 2))
    right = (w[:, :, 1:] * w[:, :, :-1]).mean(dim=(1, 2))
    down = (w[:, 1:, :] * w[:, :-1, :]).mean(dim=(1, 2))
    return float(((right + down) / 2 / var.clamp_min(1e-12)).mean())


def quotable(assignment: str, values: dict, notebook_seconds: float) -> dict[str, float]:
    """The numbers the text may quote, by key (what a marker names)."""
    cells = values["cells"]
    cpu = sum(c["cpu"] for c in cells.values())
    q = {"notebook_seconds": notebook_seconds, "notebook_cpu_seconds": cpu, "notebook_cpu_minutes": cpu / 60}
    for cell_id, c in cells.items():
        q[f"cpu.{cell_id}"] = c["cpu"]
    if assignment == "a3_char_lm":
        p1, p2 = values["part1"], values["part2"]
        q["part1.train_seconds"] = sum(r["train seconds"] for r in p1)
        q["part2.train_seconds"] = sum(r["train seconds"] for r in p2)
        ratios = []
        for cell in ("rnn", "lstm", "gru"):
            secs = {r["window"]: r["train seconds"] for r in p1 if r["cell"] == cell}
            for r in p1:
                if r["cell"] == cell:
                    q[f"part1.train_loss.{cell}.T{r['window']}"] = r["train loss"]
                    q[f"part1.val_acc.{cell}.T{r['window']}"] = r["val accuracy"]
            if 10 in secs and 30 in secs:
                q[f"part1.window30_over_10.{cell}"] = secs[30] / secs[10]
                ratios.append(secs[30] / secs[10])
        if ratios:
            q["part1.window30_over_10.min"], q["part1.window30_over_10.max"] = min(ratios), max(ratios)
        accs = [r["val accuracy"] for r in p1]
        q["part1.val_acc.min"], q["part1.val_acc.max"] = min(accs), max(accs)
        q["part1.lstm_minus_rnn_train_loss.min"] = min(
            q[f"part1.train_loss.lstm.T{r['window']}"] - q[f"part1.train_loss.rnn.T{r['window']}"]
            for r in p1 if r["cell"] == "rnn")
        minutes = []
        for r in p2:
            per_char = r["train seconds"] / r["trained chars"]
            q[f"part2.val_acc.{r['run']}"] = r["val accuracy"]
            q[f"part2.val_bits.{r['run']}"] = r["val bits/char"]
            q[f"part2.us_per_char.{r['run']}"] = per_char * 1e6
            if len(minutes) < 6:
                minutes.append(20 * per_char * values["full_epoch_chars"] / 60)
        q["part2.minutes_20_epochs.min"], q["part2.minutes_20_epochs.max"] = min(minutes), max(minutes)
        # The same from CPU time: the runs' wall time scaled by the runs cell's CPU/wall ratio.
        busy = cells["runs2"]["cpu"] / cells["runs2"]["wall"] if cells["runs2"].get("wall") else 1.0
        q["part2.cpu_minutes_20_epochs.min"] = min(minutes) * busy
        q["part2.cpu_minutes_20_epochs.max"] = max(minutes) * busy
        accs2 = [r["val accuracy"] for r in p2]
        q["part2.val_acc.min"], q["part2.val_acc.max"] = min(accs2), max(accs2)
        big, base = "lstm T=30 hidden_size=256", "lstm T=30"
        runs = {r["run"]: r for r in p2}
        for label, other in (("big", big), ("two_layers", "lstm T=30 num_layers=2"), ("head", "lstm T=30 head_hidden=128")):
            if other in runs and base in runs:
                q[f"part2.{label}_over_base.time_per_char"] = (q[f"part2.us_per_char.{other}"]
                                                              / q[f"part2.us_per_char.{base}"])
                q[f"part2.{label}_over_base.macs"] = runs[other]["MACs per step"] / runs[base]["MACs per step"]
                q[f"part2.{label}_minus_base.val_loss"] = runs[other]["val loss"] - runs[base]["val loss"]
        gru_lstm = [q[f"part2.val_acc.gru T={t}"] - q[f"part2.val_acc.lstm T={t}"] for t in (20, 30, 50)
                    if f"part2.val_acc.gru T={t}" in q]
        if gru_lstm:
            q["part2.gru_minus_lstm_val_acc.min"] = min(gru_lstm)
    elif assignment == "a4_visualizing":
        q["tuning.before"], q["tuning.after"] = values["before"], values["after"]
        for name, r in values["opt_runs"].items():
            q[f"opt.{name}"] = r["test"]
        for name, r in values["rnn_runs"].items():
            q[f"rnn.{name}"] = r["test"]
            q[f"rnn.seconds.{name}"] = r["seconds"]
        wider = [values["rnn_runs"][f"{c}-256"]["seconds"] / values["rnn_runs"][f"{c}-128"]["seconds"]
                 for c in ("rnn", "lstm", "gru") if f"{c}-256" in values["rnn_runs"]]
        if wider:
            q["rnn.256_over_128_seconds.min"], q["rnn.256_over_128_seconds.max"] = min(wider), max(wider)
        q["filters.structure.trained"] = filter_structure(values["filters_trained"])
        q["filters.structure.untrained"] = filter_structure(values["filters_untrained"])
        q["filters.structure.longer"] = filter_structure(values["filters_longer"])
        q["occlusion.p.min"] = min(e["p"] for e in values["occlusion"])
        q["occlusion.drop.min"] = min(e["p"] - min(map(min, e["heat"])) for e in values["occlusion"])
    return q


def _cell_times(nb, marks) -> dict[str, dict[str, float]]:
    """cell id -> CPU seconds (from the probes' marks) and wall seconds (nbclient's timestamps)."""
    out = {}
    for (_, before), (cell_id, after) in zip(marks, marks[1:]):
        out[cell_id] = {"cpu": round(after - before, 3)}
    for cell in nb.cells:
        timing = cell.metadata.get("execution", {})
        if cell.get("id") in out and "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start, end = (datetime.datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                          for k in ("iopub.execute_input", "shell.execute_reply"))
            out[cell["id"]]["wall"] = round((end - start).total_seconds(), 3)
    return out


# The course modules whose code trains and measures in each notebook (part of the fingerprint).
MODULES = {"a3_char_lm": ("coursekit/charlm.py",), "a4_visualizing": ("coursekit/vision.py",)}


def code_fingerprint(nb, assignment: str) -> str:
    """SHA-256 of the code that makes the numbers: every code cell except the grade cells
    (tests), as the student runs it, and the course modules that train and measure
    (``MODULES``). A change here can change what the notebook prints."""
    parts = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not meta.get("grade"):
            parts.append(cell.source)
    parts += [(REPO / module).read_text() for module in MODULES[assignment]]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


def record(assignment: str) -> Path:
    from nbclient import NotebookClient

    src = REPO / "source" / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(src, as_version=4)
    fingerprint = code_fingerprint(nb, assignment)
    # After every code cell, a probe notes the kernel's CPU seconds so far: CPU time per cell is what a
    # quiet one-thread machine would take, while wall time on a shared test machine depends on its load.
    # The hidden tests are left out: they grade, they print nothing the text quotes, and they
    # change with the grading machinery, not with what the notebook computes.
    from coursectl.cells import without_hidden

    for cell in nb.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = without_hidden(cell.source)
    probed = [nbformat.v4.new_code_cell("import resource as _resource\n_cpu_marks = [('start', sum(_resource"
                                        ".getrusage(_resource.RUSAGE_SELF)[:2]))]")]
    for cell in nb.cells:
        probed.append(cell)
        if cell.cell_type == "code":
            probed.append(nbformat.v4.new_code_cell(
                f"_cpu_marks.append(({cell.get('id', '')!r}, sum(_resource.getrusage(_resource.RUSAGE_SELF)[:2])))"))
    nb.cells = probed
    extra = nbformat.v4.new_code_cell(RECORDERS[assignment] % MARK)
    nb.cells.append(extra)
    for var in ("NBGRADER_EXECUTION", "COURSE_QUICK"):
        os.environ.pop(var, None)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    load = os.getloadavg()
    start = time.perf_counter()
    NotebookClient(nb, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": str(src.parent)}}).execute()
    seconds = time.perf_counter() - start
    if os.environ.get("RECORD_KEEP"):   # the executed notebook, to look at (not committed)
        nbformat.write(nb, os.environ["RECORD_KEEP"])
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
    values = json.loads(text[text.index(MARK) + len(MARK):].strip())
    values["cells"] = _cell_times(nb, values.pop("cpu_marks"))
    out = {
        "assignment": assignment,
        "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average before {load[0]:.1f}",
        "python": platform.python_version(),
        "torch": __import__("torch").__version__,
        "code_sha256": fingerprint,
        "notebook_seconds": round(seconds, 1),
        "quotable": quotable(assignment, values, round(seconds, 1)),
        "values": values,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {}
    for cell_id, name in FIGURES.get(assignment, {}).items():
        (cell,) = [c for c in nb.cells if c.get("id") == cell_id]
        pngs = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        if pngs:
            png = base64.b64decode(pngs[-1])
            (RESULTS / assignment).mkdir(exist_ok=True)
            (RESULTS / assignment / name).write_bytes(png)
            figures[name] = hashlib.sha256(png).hexdigest()   # ties each figure to this recording
    out["figures"] = figures
    path = RESULTS / f"{assignment}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{assignment}: {seconds:.1f} s -> {path.relative_to(REPO)}")
    return path


def requote(assignment: str) -> None:
    """Recompute ``quotable`` from a recording's values (after changing ``quotable``), no rerun."""
    path = RESULTS / f"{assignment}.json"
    rec = json.loads(path.read_text())
    rec["quotable"] = quotable(assignment, rec["values"], rec["notebook_seconds"])
    path.write_text(json.dumps(rec, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("assignments", nargs="+", choices=sorted(RECORDERS))
    ap.add_argument("--requote", action="store_true", help="only recompute the quotable numbers of a recording")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    for a in args.assignments:
        requote(a) if args.requote else record(a)


if __name__ == "__main__":
    main()
