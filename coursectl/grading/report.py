"""The run's report: what was graded, what failed and why, and how the class did."""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .model import CellScore

HELD_MARK = "HELD FOR REVIEW"  # in a submission's problems: a unit held by its policy


@dataclass
class SubmissionResult:
    student: str
    status: str                      # "graded" or "failed"
    score: float = 0.0               # after any late penalty, as nbgrader export reports it
    max_score: float = 0.0
    cells: dict[str, CellScore] = field(default_factory=dict)  # grade_id -> (score, max, autograded)
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False
    seconds: float = 0.0
    late: bool = False

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)

    @property
    def percent(self) -> float:
        return 100.0 * self.score / self.max_score if self.max_score else 0.0


def summarize(results: list[SubmissionResult]) -> dict:
    graded = [r for r in results if r.status == "graded"]
    pct = [r.percent for r in results]
    bins = [0] * 10
    for p in pct:
        bins[min(9, int(p // 10))] += 1
    cells: dict[str, list[int]] = {}
    for r in results:
        for name, cell in r.cells.items():
            if cell.autograded:
                tally = cells.setdefault(name, [0, 0])
                tally[0] += int(cell.passed)
                tally[1] += 1
    for r in results:  # an ungraded submission failed every autograded cell
        if r.status == "failed":
            for tally in cells.values():
                tally[1] += 1
    manual = max((sum(c.max_score for c in r.cells.values() if not c.autograded) for r in results), default=0.0)
    return {
        "submissions": len(results),
        "graded": len(graded),
        "graded_with_problems": sum(1 for r in graded if r.problems),
        "failed": len(results) - len(graded),
        "timed_out": sum(1 for r in results if r.timed_out),
        # A unit's policy found code to read first (coursectl/trusted.py); `course held` releases it.
        "held_for_review": sum(1 for r in results if any(HELD_MARK in p for p in r.problems)),
        "mean_score": statistics.fmean([r.score for r in results]) if results else 0.0,
        "max_score": max((r.max_score for r in results), default=0.0),
        "manual_points": manual,
        "mean_percent": statistics.fmean(pct) if pct else 0.0,
        "median_percent": statistics.median(pct) if pct else 0.0,
        "distribution": {f"{10 * i}-{10 * i + 10}%": n for i, n in enumerate(bins)},
        "pass_rate": {name: {"passed": p, "of": n, "rate": p / n if n else 0.0} for name, (p, n) in cells.items()},
    }


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text) -> str:
    """Text from a submission (a student id from a file name, a file name, a problem that
    quotes a cell) as it may reach a terminal: control characters, ANSI escapes and
    bidirectional overrides shown as escapes, never acted on."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], str(text))


def render_text(assignment: str, summary: dict, results: list[SubmissionResult], unplaced: list,
                meta: dict) -> str:
    s = summary
    lines = [
        f"Grading report for {assignment}: {s['submissions']} submissions, {meta['workers']} workers, "
        f"{meta['seconds']:.1f} s",
        f"graded: {s['graded']} (with problems: {s['graded_with_problems']}) | failed: {s['failed']} | "
        f"timed out: {s['timed_out']}",
        f"score: mean {s['mean_score']:.2f} of {s['max_score']:g} ({s['mean_percent']:.0f}%), "
        f"median {s['median_percent']:.0f}%",
        *protection_lines(meta),
    ]
    if s.get("held_for_review"):
        lines.append(f"held for review: {s['held_for_review']} submission(s) have units whose points wait until "
                     f"you have read the code named below; `course held {assignment}` lists them and "
                     f"`course held {assignment} --release STUDENT` gives the points the checks gave")
    if s.get("manual_points"):
        lines.append(f"{s['manual_points']:g} of the {s['max_score']:g} points are graded by hand "
                     "(nbgrader formgrader); scores above count them as 0 until then")
        lines.append(f"the feedback also shows them as 0: after hand grading, run `course feedback {assignment}` "
                     "to regenerate it")
    lines += [
        "",
        "distribution of scores (% of max):",
    ]
    top = max(s["distribution"].values(), default=0) or 1
    for label, n in s["distribution"].items():
        lines.append(f"  {label:>8} {'#' * round(20 * n / top):<20} {n}")
    lines += ["", "pass rate per autograded cell:"]
    for name, p in s["pass_rate"].items():
        lines.append(f"  {name:<28} {100 * p['rate']:5.1f}%  ({p['passed']}/{p['of']})")
    bad = [r for r in results if r.problems or r.status != "graded"]
    lines += ["", f"submissions with problems ({len(bad)}):"]
    width = max((len(printable(r.student)) for r in bad), default=0)
    for r in bad:
        lines.append(f"  {printable(r.student):<{width}}  {r.status.upper() if r.status != 'graded' else 'graded':<6} "
                     f"{r.score:g}/{r.max_score:g}  {printable(r.reason or 'no reason recorded')}")
    if unplaced:
        lines += ["", f"files not placed ({len(unplaced)}):"]
        lines += [f"  {printable(name)}: {printable(why)}" for name, why in unplaced]
    return "\n".join(lines) + "\n"


def secret_line(secret: dict) -> str:
    """Which course secret drew the check inputs (by fingerprint), and whether it is new."""
    line = f"check inputs: from the course secret {secret['fingerprint']}"
    if secret.get("reseeded"):
        kept = f", the previous one kept in {secret['previous']}" if secret.get("previous") else ""
        return line + f" (NEW: drawn by --reseed{kept}; scores may differ from earlier gradings)"
    if secret.get("created"):
        return line + f" (new: made by this first grading, in {secret['path']})"
    return line + " (kept from earlier gradings: a regrade of a submission gives the same per-cell scores)"


def protection_lines(meta: dict) -> list[str]:
    """What kept the kernels in check during this run (sandbox, network, limits) and
    where the jobs ran."""
    prot, limits = meta.get("protection") or {}, meta.get("limits") or {}
    cap = prot.get("memory_cap_mb")
    parts = [f"memory cap {cap} MB of address space per kernel" if cap else "no memory cap"]
    if limits.get("timeout_s"):
        parts.append(f"{limits['timeout_s']:g} s per submission")
    if limits.get("cell_timeout_s"):
        parts.append(f"{limits['cell_timeout_s']:g} s per cell")
    lines = [f"sandbox: {prot.get('sandbox') or 'not recorded'}",
             f"network: {meta['network']}",
             f"limits: {', '.join(parts)}"]
    if prot.get("job_limits"):  # the mechanism (cgroup v2/v1 or per-process only), then the caps
        caps = [f"memory {cap} MB" if cap else "",
                f"{prot['max_processes']} processes and threads" if prot.get("max_processes") else ""]
        lines.append(f"whole-job limits: {prot['job_limits']}; per submission: "
                     f"{' and '.join(c for c in caps if c) or 'none'}")
    if meta.get("runner"):
        lines.append(f"ran on: {meta['runner']}")
    if meta.get("secret"):
        lines.append(secret_line(meta["secret"]))
    return lines


def preload_plotting() -> None:
    """Import matplotlib while submissions are being graded (it takes a second)."""
    import matplotlib.figure  # noqa: F401


def plot_summary(path: Path, assignment: str, summary: dict, results: list[SubmissionResult]) -> Path:
    # A bare Figure (no pyplot) leaves the caller's matplotlib backend alone.
    from matplotlib.figure import Figure

    rates = summary["pass_rate"]
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
    left.hist([r.percent for r in results], bins=[10 * i for i in range(11)], color="#4c72b0", edgecolor="white")
    left.set(xlabel="score (% of max)", ylabel="submissions", title=f"{assignment}: scores")
    from matplotlib.ticker import MaxNLocator

    left.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of submissions
    names = list(rates)[::-1]
    right.barh(names, [100 * rates[n]["rate"] for n in names], color="#55a868")
    right.set(xlim=(0, 100), xlabel="passed (%)", title="pass rate per autograded cell")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def write_json(path: Path, assignment: str, summary: dict, results: list[SubmissionResult], unplaced: list,
               meta: dict) -> Path:
    data = {"assignment": assignment, **meta, "summary": summary,
            "submissions": [asdict(r) for r in results],
            "unplaced": [{"file": f, "reason": why} for f, why in unplaced]}
    path.write_text(json.dumps(data, indent=1))
    return path
