"""Imported once by the grading fork server (see jobs.py): load and warm up nbgrader, the
checks' harness and the feedback pages' templates and MathJax bundle, then freeze the heap
so forked grading processes do not copy it page by page. (The graded assignments' checks
modules, with torch, used by the grader to plan and judge, and what their references
import on first use come before this one in the fork server's preload list:
jobs.start_fork_server.)"""
import gc
import warnings

from . import cell_schema
from .worker import warm_up

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        cell_schema.install()
    except Exception:  # nbgrader's own per-call check stays
        pass
    try:
        warm_up()
    except Exception:  # a cold start is slower, not wrong
        pass
    try:
        from coursectl import offline_math

        offline_math.inline_bundle()  # the MathJax every feedback page carries, read once
    except Exception:
        pass
    try:
        from autograder import harness  # noqa: F401  (what every job's trusted chain uses)
    except Exception:
        pass
gc.collect()
gc.freeze()
