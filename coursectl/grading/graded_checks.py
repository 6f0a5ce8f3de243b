"""Imported first by the grading fork server (see jobs.py): the trusted checks modules
(autograder/<assignment>/checks, with torch and the harness) of the assignments it will
grade, named by jobs.start_fork_server in the environment (model.CHECKS_VAR), so that no
job imports them on first use: `course grade A` names A alone (a fork server for a1 does
not import a2's checks, and one for an assignment with no checks module, an instructor's
own or the test suite's small ones, does not import torch); a server for any assignment
(the feedback service's, one started by a first job) imports every one. A checks module
that fails to import (or that is not there) is left to each job."""
import importlib
import os
import pkgutil
import warnings

from .model import CHECKS_VAR

wanted = os.environ.pop(CHECKS_VAR, "*")  # not passed on to jobs
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import autograder

        names = ([info.name for info in pkgutil.iter_modules(autograder.__path__) if info.ispkg]
                 if wanted == "*" else [name for name in wanted.split(",") if name])
    except Exception:  # no autograder here: units are imported on first use
        names = []
    for name in names:
        try:
            importlib.import_module(f"autograder.{name}.checks")  # autograder/<assignment>/checks(.py)
        except Exception:
            pass
