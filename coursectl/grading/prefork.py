"""Imported once by the grading fork server (see jobs.py): load and warm up nbgrader,
then freeze the heap so forked grading processes do not copy it page by page."""
import gc
import warnings

from .worker import warm_up

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        warm_up()
    except Exception:  # a cold start is slower, not wrong
        pass
gc.collect()
gc.freeze()
