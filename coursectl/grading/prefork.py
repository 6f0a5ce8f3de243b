"""Imported once by the grading fork server (see jobs.py): load and warm up nbgrader and
the trusted checks (torch, the harness, every assignment's checks module, used by the
grader to plan and judge) and the feedback pages' templates and MathJax bundle, then
freeze the heap so forked grading processes do not copy it page by page. (The modules
the graded assignments' references import on first use come before this one in the
fork server's preload list: jobs.start_fork_server.)"""
import gc
import importlib
import importlib.util
import pkgutil
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
        import autograder
        from autograder import harness  # noqa: F401  (numpy, torch through the checks)

        for info in pkgutil.iter_modules(autograder.__path__):
            if info.name.endswith("_checks"):
                importlib.import_module(f"autograder.{info.name}")
            elif info.ispkg and importlib.util.find_spec(f"autograder.{info.name}.checks"):
                importlib.import_module(f"autograder.{info.name}.checks")  # autograder/<assignment>/checks.py
    except Exception:  # no autograder here: units are imported on first use
        pass
gc.collect()
gc.freeze()
