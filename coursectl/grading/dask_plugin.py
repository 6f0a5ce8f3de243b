"""A Dask worker plugin for grading workers (imported only when Dask is used)."""
from __future__ import annotations

from distributed import WorkerPlugin

from . import jobs


class WarmUp(WorkerPlugin):
    """Start the grading fork server when a worker starts (also one that replaces a dead
    worker), so nbgrader and the checks are imported before the first job arrives."""

    name = "coursectl-grading-warm-up"

    def setup(self, worker) -> None:
        jobs.start_fork_server()
