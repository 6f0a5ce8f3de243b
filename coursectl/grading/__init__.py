"""Batch grading for `course grade`: parallel (a local pool or a Dask cluster), isolated,
and kind to broken notebooks. The steps are in pipeline.py; the package exports
``grade_assignment`` and what it returns.

Modules: pipeline (the steps), model (jobs and results as data), staging (check and
repair a submission), jobs (run one job in a forked process), worker (nbgrader inside
that process), runners (local pool, Dask), sandbox (bubblewrap around the kernel),
gradebook, intake, report, export.

This module and what it imports at the top stay light: `course grade` never imports torch.
"""
from __future__ import annotations

import warnings

from .model import CellScore, GradeJob, JobResult
from .pipeline import GradeOptions, GradingPipeline, GradingRun
from .report import SubmissionResult

__all__ = ["grade_assignment", "grade_from_cli", "GradeOptions", "GradingRun", "SubmissionResult",
           "GradeJob", "JobResult", "CellScore"]


def grade_assignment(course, assignment: str, options: GradeOptions | None = None, **kwargs) -> GradingRun:
    """Grade every submission of ``assignment`` in the course folder ``course``.

    Options come as a ``GradeOptions`` or as its fields by keyword (documented there):
    ``workers``, ``cluster`` ("local:N" or "tcp://host:port"), ``executor`` (a
    concurrent.futures executor or a Dask ``Client``), ``tries``, ``timeout``,
    ``cell_timeout``, ``memory_mb``, ``max_output_bytes``, ``isolate_network``,
    ``sandbox``, ``from_zip``, ``roster``, ``students``, ``db_url``, ``feedback``,
    ``progress``, ``work_dir``, ``reseed``. Raises CourseError (nothing written) for a missing
    assignment, a sandbox that cannot start, or a cluster that cannot be reached.
    """
    if options is not None and kwargs:
        raise TypeError("give grade_assignment a GradeOptions or keyword options, not both")
    opts = options or GradeOptions(**kwargs)
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy warnings that mean nothing to a grader
        warnings.filterwarnings("ignore", message=".*not in session.*")
        return GradingPipeline(course, assignment, opts).run()


def grade_from_cli(course, args) -> GradingRun:
    """`course grade ASSIGNMENT [--from ZIP] [--roster CSV] [--workers N | --cluster C]
    [--timeout S] [--cell-timeout S] [--memory-mb M] [--no-sandbox] [--reseed]`: grade, then print the
    summary and file paths."""
    run = grade_assignment(course, args.assignment, workers=args.workers, cluster=getattr(args, "cluster", None),
                           timeout=args.timeout, cell_timeout=getattr(args, "cell_timeout", None),
                           memory_mb=args.memory_mb, max_processes=getattr(args, "max_processes", None),
                           from_zip=getattr(args, "from_zip", None),
                           roster=getattr(args, "roster", None), sandbox=not getattr(args, "no_sandbox", False),
                           reseed=getattr(args, "reseed", False))
    print(run.text, end="")
    print()
    for label, path in run.files.items():
        print(f"{label}: {path}")
    print(f"feedback: {course / 'feedback'}/<student>/{args.assignment}/")
    return run
