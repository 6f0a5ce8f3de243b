"""Partial credit for one grade cell.

A grade cell runs several independent checks. Each check is a callable that raises
``AssertionError`` (or any exception) when the student's code is wrong. The cell's
result is ``points * passed / total``; nbgrader reads the returned float from the
cell's last output as partial credit. Messages name the failed checks but never
print hidden test source.
"""
from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from typing import Callable


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what was wrong."""


class Scorer:
    def __init__(self, unit: str, points: float):
        self.unit = unit
        self.points = float(points)
        self.results: list[tuple[str, bool, str]] = []

    def check(self, name: str, fn: Callable[[], None]) -> bool:
        """Run one check, silencing warnings so they never reach stderr."""
        sink = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(sink):
                warnings.simplefilter("ignore")
                fn()
        except AssertionError as exc:
            self.results.append((name, False, str(exc) or "wrong result"))
            return False
        except Exception as exc:  # the student's code crashed inside the check
            self.results.append((name, False, f"raised {type(exc).__name__}: {exc}".strip()[:300]
                                 + _student_frame(exc)))
            return False
        self.results.append((name, True, ""))
        return True

    def fail(self, name: str, message: str) -> None:
        """Record a failed check without running anything (e.g. class missing)."""
        self.results.append((name, False, message))

    @property
    def passed(self) -> int:
        return sum(ok for _, ok, _ in self.results)

    def score(self) -> float:
        total = len(self.results)
        return round(self.points * self.passed / total, 4) if total else 0.0

    def report(self) -> str:
        total = len(self.results)
        lines = [f"{self.unit}: {self.passed}/{total} checks passed -> "
                 f"{self.score():g} of {self.points:g} points"]
        for name, ok, msg in self.results:
            if not ok:
                lines.append(f"  FAILED {name}: {msg}")
        return "\n".join(lines)

    def finish(self) -> float:
        """Print the report and return the points earned (the cell's last value)."""
        print(self.report())
        return self.score()


def _student_frame(exc: BaseException) -> str:
    """Point at the innermost frame outside the autograder (the student's line)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "autograder" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    where = "your notebook" if f.filename.startswith("<") or "ipykernel" in f.filename else f.filename
    return f" (in {where}, line {f.lineno}: {f.line})"


def assert_close(actual, expected, atol: float, rtol: float, what: str) -> None:
    """Raise CheckFailed naming ``what`` and the largest difference when tensors differ."""
    import torch

    if not isinstance(actual, torch.Tensor):
        raise CheckFailed(f"{what}: expected a tensor, got {type(actual).__name__}")
    if tuple(actual.shape) != tuple(expected.shape):
        raise CheckFailed(f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
    a = actual.detach().double().cpu()
    e = expected.detach().double().cpu()
    if not torch.allclose(a, e, atol=atol, rtol=rtol):
        diff = (a - e).abs().max().item()
        raise CheckFailed(f"{what}: values differ (max abs diff {diff:.2e}, tolerance atol={atol:g}, rtol={rtol:g})")
