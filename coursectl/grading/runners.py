"""Where grading jobs run: the local pool, any concurrent.futures executor, or Dask.

The pipeline only submits ``jobs.grade_job(job)`` and reads back ``JobResult``s, in the
order they finish. Jobs are self-contained (model.py), so the same call works on

* the local pool (default): a thread pool whose threads each wait while ``grade_job``
  runs its submission in a forked process, so the threads cost nothing and one process
  per submission keeps submissions apart; two threads per worker, so that each worker's
  next job starts its kernel ahead and waits for the worker's cell slot (jobs.CellSlots);
* a Dask cluster (``cluster="local:N"``: a ``LocalCluster`` of N worker processes started
  here; ``cluster="tcp://host:8786"``: a running scheduler; or ``executor=Client(...)``,
  e.g. for a dask-jobqueue or Kubernetes cluster). Workers need this package and the
  datasets, nothing of the course folder.

Faults on Dask: a job whose worker dies (a killed process, a lost machine) runs again on
another worker, since the main process only writes a grade when a result arrives it is
neither lost nor written twice; a job that keeps killing workers fails after the
scheduler's ``allowed-failures`` + 1 tries (``tries`` for a ``local:N`` cluster) with that
reason. A job that raises (a worker that cannot write its scratch folder) is retried once.
A cluster without workers for WORKERS_TIMEOUT_S ends the wait: the jobs not finished
come back failed with that reason, and the run writes its report.
"""
from __future__ import annotations

import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from . import jobs
from .model import GradeJob, JobResult, Tree

DEFAULT_TRIES = 3          # runs of one job on workers that died under it, then it fails
CONNECT_TIMEOUT_S = 10     # reaching a scheduler
WORKERS_TIMEOUT_S = 120    # a reachable scheduler must have a worker by then
MACHINE_VARS = ("COURSE_DATA_DIR", "COURSE_DEVICE")  # this machine's own: not for another one


class ClusterError(RuntimeError):
    """The cluster cannot be used (unreachable, no workers, a bad --cluster value)."""


def default_workers() -> int:
    return jobs.cores()


class Stalled:
    """Stands for the future of a job that will not finish: the cluster lost its workers."""

    def __init__(self, reason: str):
        self.reason = reason

    def result(self, timeout=None):
        raise ClusterError(self.reason)

    def done(self) -> bool:
        return True


_NONE_LEFT = object()


def in_finish_order(submit: Callable, items: Iterable, window: Callable[[], int] | None = None,
                    stalled: Callable[[], str | None] | None = None, poll_s: float = 5.0) -> Iterator:
    """Submit ``items`` with ``submit(item) -> future`` and yield (item, future) in the
    order they finish, for any future type with add_done_callback. With ``window``, at
    most ``window()`` are in flight (checked at each refill, so workers that join count);
    the remaining items wait here, not on a worker. ``items`` may be a generator: each item
    is taken from it only when it can be submitted. ``stalled()``, asked every ``poll_s``
    while nothing finishes, may give a reason to stop waiting: every item not finished
    then comes back with a ``Stalled`` future."""
    done: queue.Queue = queue.Queue()
    pending = iter(items)  # taken one at a time: an item may be made only when its turn comes
    flying: dict = {}

    def refill() -> None:
        limit = None if window is None else max(1, window())
        while limit is None or len(flying) < limit:
            item = next(pending, _NONE_LEFT)
            if item is _NONE_LEFT:
                return
            fut = submit(item)
            flying[fut] = item
            fut.add_done_callback(done.put)

    refill()
    while flying:
        try:
            fut = done.get(timeout=poll_s if stalled else None)
        except queue.Empty:
            why = stalled()
            if why:
                for fut in list(flying):
                    fut.cancel()
                for item in [*flying.values(), *pending]:
                    yield item, Stalled(why)
                return
            continue
        item = flying.pop(fut, None)
        if item is None:  # a callback after the end (cancelled above)
            continue
        yield item, fut
        refill()


def course_env(remote: bool) -> dict[str, str]:
    """The COURSE_* settings of this process, for the grading processes; on another
    machine without the ones that name this machine's folders or devices."""
    return {k: v for k, v in os.environ.items()
            if k.startswith("COURSE_") and not (remote and k in MACHINE_VARS)}


class LocalRunner:
    """A concurrent.futures executor: the local thread pool, or one the caller gave."""

    def __init__(self, workers: int | None = None, executor=None, assignments=None):
        self.workers = workers or default_workers()
        self.owned = executor is None
        # Our pool: a second thread per worker for the job started ahead; at most
        # ``workers`` jobs run cells at once. A caller's executor runs jobs as it likes.
        self.slots = jobs.CellSlots(self.workers) if self.owned else None
        self.pool = executor if executor is not None else ThreadPoolExecutor(
            max_workers=2 * self.workers, thread_name_prefix="grade")
        self.where = (f"{self.workers} local workers" if self.owned
                      else f"executor {type(executor).__name__}")
        if self.owned:
            jobs.start_fork_server(assignments)  # now, so that its imports overlap with the staging

    def job_env(self) -> dict[str, str]:
        return {**jobs.thread_env(self.workers), **course_env(remote=False)}

    def probe_sandbox(self, no_network: bool) -> tuple[str | None, str]:
        return jobs.probe_sandbox(no_network=no_network, remember=True)

    def warm(self, source: Tree, env: dict[str, str]) -> None:
        """Start the kernels' zygote (zygote.py) for these jobs now, beside the staging."""
        jobs.warm_zygote(source, env)

    def submit(self, job: GradeJob):
        if self.slots is None:
            return self.pool.submit(jobs.grade_job, job)
        return self.pool.submit(jobs.grade_job, job, slots=self.slots)

    window = None   # every job at once: the pool queues them
    stalled = None  # a local pool does not lose its workers

    def outcome(self, fut, job: GradeJob) -> JobResult:
        try:
            return fut.result()
        except Exception as exc:  # the executor itself lost the job
            return JobResult.failed(job.student, f"executor error: {type(exc).__name__}: {exc}")

    def abort(self, futures: list) -> None:
        jobs.stop_all()
        if self.owned:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self.owned:
            self.pool.shutdown(wait=True)


class DaskRunner:
    """A Dask ``distributed.Client``: one we started (``local:N``, an address) or the caller's."""

    def __init__(self, client, cluster=None, owned: bool = False, assignments=None):
        self.client, self.cluster, self.owned = client, cluster, owned
        address = client.scheduler.address
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            self.close()
            raise ClusterError(f"the Dask scheduler at {address} has no workers after {WORKERS_TIMEOUT_S} s "
                               f"({exc}); start some with `dask worker {address}`") from None
        info = client.scheduler_info()
        self.workers = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()) or 1
        self.tries = 1 + int(client.run_on_scheduler(_allowed_failures))
        self.where = f"Dask {'LocalCluster' if cluster is not None else 'scheduler'} {client.scheduler.address}"
        self._no_workers_since: float | None = None
        from .dask_plugin import WarmUp

        client.register_plugin(WarmUp(assignments))

    def job_env(self) -> dict[str, str]:
        if self.cluster is not None:  # our LocalCluster: all its workers share this machine's cores
            return {**jobs.thread_env(self.workers), **course_env(remote=False)}
        # Elsewhere each worker sets thread counts for its own cores (jobs.grade_job).
        return course_env(remote=True)

    def warm(self, source: Tree, env: dict[str, str]) -> None:
        """Start each worker's kernels' zygote (zygote.py) now, beside the staging. The
        workers of our own LocalCluster share this machine and this process's zygote."""
        # (client.run waits: its wait=False is for coroutine functions only. Starting a
        # zygote returns at once; it imports in the background.)
        try:
            shared = jobs.warm_zygote(source, env) if self.cluster is not None else None
            if shared is not None:
                self.client.run(_adopt_or_warm, source, env, shared)
            else:
                self.client.run(jobs.warm_zygote, source, env)
        except Exception:  # a worker that cannot: it starts one with its first job
            pass

    def probe_sandbox(self, no_network: bool) -> tuple[str | None, str]:
        """Can a worker start the sandbox? (Each worker checks again before its jobs.)"""
        fut = self.client.submit(jobs.probe_sandbox, no_network, pure=False)
        try:
            return fut.result(timeout=WORKERS_TIMEOUT_S)
        except Exception as exc:
            return None, f"the sandbox probe on a Dask worker failed ({type(exc).__name__}: {exc})"

    def stalled(self) -> str | None:
        """Why to stop waiting: no worker for WORKERS_TIMEOUT_S (a SLURM allocation that
        ran out, a cluster shut down). The jobs not finished are then reported failed."""
        if self.window() > 0:
            self._no_workers_since = None
            return None
        now = time.monotonic()
        self._no_workers_since = self._no_workers_since or now
        if now - self._no_workers_since < WORKERS_TIMEOUT_S:
            return None
        return (f"not graded: the Dask cluster ({self.client.scheduler.address}) had no workers for "
                f"{WORKERS_TIMEOUT_S} s")

    def submit(self, job: GradeJob):
        # One key per job and run: the result comes back once, whichever worker ran it.
        return self.client.submit(jobs.grade_job, job, key=f"grade-{job.assignment}-{job.student}-{os.urandom(4).hex()}",
                                  pure=False, retries=1)

    def window(self) -> int:
        """Jobs in flight: one per worker thread. A job queued on a worker that dies would
        count that death as one of its tries, so the rest wait here."""
        workers = self.client.scheduler_info().get("workers", {})
        return sum(w.get("nthreads", 1) for w in workers.values())

    def outcome(self, fut, job: GradeJob) -> JobResult:
        from distributed.scheduler import KilledWorker

        try:
            return fut.result()
        except ClusterError as exc:
            return JobResult.failed(job.student, str(exc))
        except KilledWorker:
            return JobResult.failed(job.student, f"its grading killed the Dask worker running it {self.tries} "
                                                 f"times; not tried again")
        except Exception as exc:
            return JobResult.failed(job.student, f"Dask error: {type(exc).__name__}: {exc}"[:300])

    def abort(self, futures: list) -> None:
        try:
            self.client.cancel(futures)
        finally:
            self.close()

    def close(self) -> None:
        if self.owned:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()
            self.owned = False


def _adopt_or_warm(source: Tree, env: dict[str, str], shared) -> None:
    """On a LocalCluster's worker: the course process's zygote, else one of its own."""
    if not jobs.adopt_zygote(source, env, shared):
        jobs.warm_zygote(source, env)


def _allowed_failures(dask_scheduler=None) -> int:
    return int(getattr(dask_scheduler, "allowed_failures", DEFAULT_TRIES - 1))


def open_runner(*, cluster: str | None = None, executor=None, workers: int | None = None,
                tries: int = DEFAULT_TRIES, assignments=None):
    """The runner for ``cluster`` ("local:N" or a scheduler address), a caller's
    ``executor`` (concurrent.futures, or a Dask Client), or the local pool; ``assignments``
    it will grade (None: any), for what the local fork server imports ahead."""
    if cluster and executor is not None:
        raise ClusterError("give a cluster or an executor, not both")
    if executor is not None:
        if _is_dask_client(executor):
            return DaskRunner(executor, assignments=assignments)
        return LocalRunner(workers, executor)
    if not cluster:
        return LocalRunner(workers, assignments=assignments)
    if cluster.startswith("local:"):
        try:
            n = int(cluster[len("local:"):])
        except ValueError:
            n = 0
        if n < 1:
            raise ClusterError(f"--cluster {cluster!r}: say local:N with N worker processes, N >= 1")
        return _local_cluster(n, tries, assignments)
    if "://" in cluster:
        return _connect(cluster, assignments)
    raise ClusterError(f"--cluster {cluster!r}: expected local:N or a scheduler address like tcp://host:8786")


def _is_dask_client(executor) -> bool:
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "scheduler_info")


def _local_cluster(n: int, tries: int, assignments=None) -> DaskRunner:
    import logging

    import dask
    from distributed import Client, LocalCluster

    # Workers are not daemons (daemons may not start the grading processes); no memory
    # limit on the worker (each kernel has its own cap); the scheduler gives up on a job
    # after ``tries`` runs that killed their worker, and sends a worker only the jobs it
    # runs now (a job queued on a worker that dies would count that death as a try).
    with dask.config.set({"distributed.worker.daemon": False,
                          "distributed.scheduler.allowed-failures": max(0, tries - 1),
                          "distributed.scheduler.worker-saturation": 1.0}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, memory_limit=0,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
    return DaskRunner(client, cluster, owned=True, assignments=assignments)


def _connect(address: str, assignments=None) -> DaskRunner:
    from distributed import Client

    try:
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}). "
                           "Is it running (`dask scheduler`) and reachable from here? Nothing was graded "
                           "or written.") from None
    return DaskRunner(client, owned=True, assignments=assignments)
