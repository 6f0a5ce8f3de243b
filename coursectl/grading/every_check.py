"""Imported by the grading fork server when it does not know which assignments it will
grade (a Dask worker of the feedback service, a fork server started by a first job):
every assignment's trusted checks (autograder/<assignment>/checks.py, with torch and the
harness), so that no job imports them on first use. `course grade A` names A instead
(jobs.start_fork_server): a fork server for a1 does not import a2's checks, and one for
an assignment with no checks module (the test suite's small ones) does not import torch."""
import importlib
import importlib.util
import pkgutil
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import autograder

        for info in pkgutil.iter_modules(autograder.__path__):
            if info.name.endswith("_checks"):
                importlib.import_module(f"autograder.{info.name}")
            elif info.ispkg and importlib.util.find_spec(f"autograder.{info.name}.checks"):
                importlib.import_module(f"autograder.{info.name}.checks")  # autograder/<assignment>/checks.py
    except Exception:  # no autograder here: units are imported on first use
        pass
