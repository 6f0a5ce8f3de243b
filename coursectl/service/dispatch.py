"""Background grading: the fair queue, the threads that grade from it, and the one
locked place where an attempt is accepted (limits checked, stored, queued).

Grading runs in threads of their own (each waits on a forked grading process or a Dask
future), never in the web server's event loop, so status requests stay answered while
the machine grades. On start the queue is filled again from the store with the
attempts this instance left queued or running (a crash, a kill -9, a restart).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .limits import HOUR_S, Refusal, check_rate
from .queue import FairQueue
from .store import Attempt, Store

log = logging.getLogger("coursectl.service")
STOP_GRACE_S = 3.0  # a failed job waits this long for a shutdown signal before its failure is stored


@dataclass(frozen=True)
class Accepted:
    attempt: Attempt
    position: int


class Dispatcher:
    def __init__(self, store: Store, grader, settings):
        self.store = store
        self.grader = grader
        self.settings = settings
        self.queue = FairQueue(capacity=settings.queue_capacity, per_student=settings.queued_per_student)
        self.cond = threading.Condition()
        self.running: dict[int, Attempt] = {}
        self.threads: list[threading.Thread] = []
        self.stopping = False
        self.graded = 0

    # ------------------------------------------------------------ life

    def start(self) -> int:
        """Queue again what this instance left unfinished, start the grading threads; the
        number of attempts resumed."""
        resumed = self.store.resume(self.settings.instance)
        with self.cond:
            for attempt in resumed:
                self.queue.push(attempt.id, attempt.student, force=True)
        for i in range(self.grader.slots):
            t = threading.Thread(target=self._loop, name=f"serve-grade-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        if resumed:
            log.info("resumed %d attempt(s) left queued or running", len(resumed))
        return len(resumed)

    def begin_stop(self) -> None:
        """Take nothing more and store no result from now on (a shutdown signal arrived)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()

    def stop(self, wait_s: float = 10.0) -> None:
        """Take nothing more; stop the grading in flight (those attempts stay running in
        the store and are graded on the next start)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self.running:
            self.grader.abort()
        for t in self.threads:
            t.join(wait_s)

    # ------------------------------------------------------------ accepting

    def seconds_per_attempt(self) -> float:
        return self.store.mean_grading_seconds() or self.settings.grade_seconds_guess

    def accept(self, *, assignment: str, student: str, data: bytes, filename: str,
               now: float | None = None) -> Accepted | Refusal:
        """Check the limits and the queue, then store and queue the attempt; or say why not."""
        now = time.time() if now is None else now
        rules = self.settings.rules(assignment)
        guess = self.seconds_per_attempt()
        with self.cond:  # one student's two requests at once cannot both pass a limit
            earlier = self.store.submission_times(student, assignment, now - HOUR_S - 1)
            refused = check_rate(rules.limits, now, earlier)
            if refused:
                return refused
            full = self.queue.refusal(student, seconds_per_attempt=guess, slots=self.grader.slots)
            if full:
                return Refusal(full.reason, full.retry_after)
            attempt = self.store.add_attempt(assignment=assignment, student=student, data=data, filename=filename,
                                             owner=self.settings.instance, now=now)
            position = self.queue.push(attempt.id, student, force=True)
            self.cond.notify()
        return Accepted(attempt, position)

    def position(self, attempt_id: int) -> int | None:
        """1: next to be graded; 0: being graded; None: not waiting here."""
        with self.cond:
            if attempt_id in self.running:
                return 0
            return self.queue.position(attempt_id)

    def snapshot(self) -> dict:
        """The live queue, for the instructor."""
        with self.cond:
            waiting = self.queue.snapshot()
            running = list(self.running.values())
        return {"running": [{"attempt": a.id, "student": a.student, "assignment": a.assignment,
                             "started_at": a.started_at} for a in running],
                "queued": [{"attempt": a, "student": s, "position": p} for a, s, p in waiting],
                "slots": self.grader.slots, "graded_since_start": self.graded}

    # ------------------------------------------------------------ grading

    def _next(self) -> Attempt | None:
        with self.cond:
            while not self.stopping:
                item = self.queue.pop()
                if item is None:
                    self.cond.wait(1.0)
                    continue
                attempt_id, _student = item
                if not self.store.claim(attempt_id):  # finished or taken elsewhere meanwhile
                    continue
                attempt = self.store.get(attempt_id)
                self.running[attempt_id] = attempt
                return attempt
            return None

    def _loop(self) -> None:
        while True:
            attempt = self._next()
            if attempt is None:
                return
            try:
                verdict = self.grader.grade(assignment=attempt.assignment, student=attempt.student,
                                            notebook=self.store.read_blob(attempt.sha256), filename=attempt.filename)
            except Exception as exc:  # a bug or a lost cluster: the attempt fails with the reason, the service lives
                log.exception("grading attempt %s failed", attempt.id)
                from .grader import Verdict

                verdict = Verdict("failed", reason=f"the grader could not grade it: {type(exc).__name__}: {exc}")
            with self.cond:
                if verdict.status == "failed" and not self.stopping:
                    # Ctrl-C or a service manager's SIGTERM reaches the grading processes with the
                    # service: a job that died then is the shutdown's doing, not the notebook's.
                    self.cond.wait_for(lambda: self.stopping, timeout=STOP_GRACE_S)
                if self.stopping:  # aborted mid-grading: left running, graded again next start
                    self.running.pop(attempt.id, None)
                    return
            self.store.finish(attempt.id, status=verdict.status, score=verdict.score, max_score=verdict.max_score,
                              units=verdict.units, reason=verdict.reason)
            with self.cond:
                self.running.pop(attempt.id, None)
                self.graded += 1
            log.info("attempt %s (%s, %s): %s %s", attempt.id, attempt.student, attempt.assignment, verdict.status,
                     "" if verdict.score is None else f"{verdict.score:g}/{verdict.max_score:g}")
