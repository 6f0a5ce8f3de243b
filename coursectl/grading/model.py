"""The data that travels between `course grade` and whatever grades a submission.

A ``GradeJob`` is self-contained: the staged submission's files, the course's
nbgrader_config.py, the assignment's source folder and a template gradebook holding its
definition all travel in it as bytes, so a worker (a local thread, a Dask worker on
another machine) needs only this package installed and the datasets, never the course
folder. A ``JobResult`` brings everything back as data (grades, the graded notebooks,
feedback pages, the grader's log), and only the main process writes the course.

Standard library only: both sides import it cheaply, and jobs.py and worker.py share
it without importing each other.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

# A folder's files, by path relative to it: (permission bits, bytes).
Tree = dict[str, tuple[int, bytes]]

# Which assignments' checks modules the grading fork server imports as it starts (read and
# removed by graded_checks.py; set by jobs.start_fork_server): their names, comma-separated,
# or "*" for every one (a server for any assignment).
CHECKS_VAR = "SEQCOURSE_FORK_SERVER_CHECKS"

SKIP = (".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store")  # never worth sending
RESULT_FILE = "result.json"
KERNELS_FILE = "kernels.jsonl"
LOG_FILE = "grader.log"
# The parts of a job's time in JobResult.timings, in the order they happen. "imports",
# "cells" and "checks" are the kernel's own time for import-only cells, the other cells and
# the grade cells (from the kernel's reply stamps); "execute" is all cells as the grading
# process waited for them (messaging and the kernel's shutdown included). "preload" is the
# trusted start-up code's imports in the new kernel, "waiting" the time a kernel started
# ahead waited for a free cell slot, and "ahead" all of the job's time before it got that
# slot (staging to waiting: done while the worker's previous job ran its cells). Two parts
# are the course process's own, outside the job: "checking" (the submission checked,
# repaired and packed into a job, before it is sent) and "writing" (its result merged into
# the course); one course process serves every worker, so these bound how many it can feed.
TIMING_PARTS = ("checking", "staging", "fork", "setup", "kernel_start", "preload", "waiting", "ahead", "imports",
                "cells", "checks", "execute", "judging", "feedback", "exit", "packing", "writing")


def skip_slow_format_checks() -> None:
    """jsonschema's IRI format check (rfc3987_syntax builds a grammar parser on import,
    1.5 s of CPU) loaded on first use in the grading processes and `course grade`, where
    the course's environment has no start-up line doing it already (coursectl/lazy_iri.py)."""
    from ..lazy_iri import install

    install()


def pack_tree(folder: Path) -> Tree:
    """Every file under ``folder`` (symbolic links followed), for sending in a job."""
    out: Tree = {}
    if not folder.is_dir():
        return out
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            if _skipped(name):
                continue
            path = Path(root, name)
            out[path.relative_to(folder).as_posix()] = (path.stat().st_mode & 0o777, path.read_bytes())
    return out


def unpack_tree(tree: Tree, folder: Path) -> None:
    """Write a packed tree under ``folder`` (created), keeping permission bits."""
    folder.mkdir(parents=True, exist_ok=True)
    for rel, (mode, data) in tree.items():
        path = folder / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"refusing to write outside {folder}: {rel!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode or 0o644)


def _skipped(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in SKIP)


@dataclass(frozen=True)
class Limits:
    """What one submission may use."""
    timeout: float                      # wall clock for the whole submission, s
    cell_timeout: int | None = None     # per cell, s (None: the course config's)
    memory_mb: int | None = None        # memory cap: the whole job (cgroup) and each process's address space
    max_processes: int | None = 256     # processes and threads of the whole job (cgroup; None: none)
    max_output_bytes: int = 5_000_000   # output kept per cell
    no_network: bool = True             # the kernel gets no network


@dataclass
class GradeJob:
    """Everything needed to autograde one submission and write its feedback."""
    assignment: str
    student: str
    submission: Tree                    # the staged submitted/<student>/<assignment>/
    config_text: str                    # the course's nbgrader_config.py
    source: Tree                        # source/<assignment>/ (nbgrader copies its extra files)
    gradebook: bytes                    # SQLite gradebook with the assignment's definition only
    limits: Limits
    course_id: str | None = None
    secret: str = ""                    # the course's secret (hex) for drawing check inputs (coursectl/secret.py)
    prior: dict = field(default_factory=dict)   # manual grades already in the real gradebook
    feedback: bool = True
    sandbox: bool = True                # kernels in bubblewrap; the worker refuses if it cannot
    env: dict[str, str] = field(default_factory=dict)  # variables for the grader and its kernel

    @property
    def key(self) -> str:
        return f"{self.assignment}/{self.student}"


@dataclass
class JobResult:
    """What grading one submission produced, as plain data."""
    student: str
    status: str                         # "graded" or "failed"
    problems: list[str] = field(default_factory=list)  # one-line reasons
    grades: dict | None = None          # see gradebook.collect_grades
    autograded: Tree = field(default_factory=dict)     # autograded/<student>/<assignment>/
    feedback: Tree = field(default_factory=dict)       # feedback/<student>/<assignment>/
    log: str = ""                       # nbgrader's log and the kernel's stderr
    timed_out: bool = False
    network: str | None = None          # the isolation the kernel got, in words
    seconds: float = 0.0
    worker: str = ""                    # where it ran (host name, Dask worker)
    # Seconds per part of the job, measured where it ran (TIMING_PARTS; "job": all of it).
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def failed(cls, student: str, reason: str, *, timed_out: bool = False, log: str = "",
               seconds: float = 0.0) -> "JobResult":
        """A submission that produced no grades, with the reason the report shows."""
        return cls(student, "failed", problems=[reason], timed_out=timed_out, log=log, seconds=seconds)

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


class CellScore(NamedTuple):
    """One graded cell of one submission, as the report counts it. A named tuple, so
    that callers may still unpack ``score, max_score, autograded`` and report.json keeps
    writing it as a list."""
    score: float | None
    max_score: float
    autograded: bool                    # an autograded code cell (counted in pass rates)

    @property
    def passed(self) -> bool:
        return self.score is not None and self.score >= self.max_score - 1e-9
