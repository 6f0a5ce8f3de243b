"""The worker pool behind `course grade`, as a concurrent.futures-style executor.

Grading code only calls ``executor.submit(grade_job, job)`` and waits on the returned
futures through their ``add_done_callback``, which ``concurrent.futures`` executors and
Dask's ``distributed.Client`` both provide. So a cluster can be plugged in with

    from distributed import Client
    grade_assignment(course, "a1_rnn_cells", executor=Client("scheduler:8786"))

provided the workers have this package installed and see the course folder and the
grading work folder (``work_dir``) at the same paths (a shared file system).

The local default is a thread pool: each thread only waits while ``grade_job`` runs its
submission in a separate forked process, so the threads cost nothing and one process per
submission keeps every submission apart.
"""
from __future__ import annotations

import os
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Protocol


class Executor(Protocol):
    """The part of ``concurrent.futures.Executor`` the grader uses."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Any: ...

    def map(self, fn: Callable, *iterables: Iterable, **kwargs: Any) -> Iterator: ...


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def local_executor(workers: int | None = None) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers or default_workers(), thread_name_prefix="grade")


def as_completed(futures: list) -> Iterator:
    """Futures in the order they finish, for any future type with add_done_callback."""
    done: queue.Queue = queue.Queue()
    for fut in futures:
        fut.add_done_callback(done.put)
    for _ in futures:
        yield done.get()
