"""A Dask worker plugin for grading workers (imported only when Dask is used)."""
from __future__ import annotations

from distributed import WorkerPlugin

from . import jobs


class WarmUp(WorkerPlugin):
    """Start the grading fork server when a worker starts (also one that replaces a dead
    worker), so nbgrader and the checks are imported before the first job arrives, with the
    first-use imports of ``assignments`` (None: of every assignment; see
    jobs.start_fork_server). A worker whose fork server runs already keeps it."""

    name = "coursectl-grading-warm-up"

    def __init__(self, assignments=None):
        self.assignments = None if assignments is None else tuple(assignments)

    def setup(self, worker) -> None:
        jobs.start_fork_server(self.assignments)
