"""Grade a submission's units in this process under a given course secret (no kernels).

``submissions()`` lists every mutant in tests/mutants/ and the template-style a1 student;
``grade(submission, secret)`` gives their per-cell scores as grading with that secret
would (``Unit.run_local`` with the same per-check draws as the trusted chain). Used by
test_reproducible.py and handy when choosing a check's fixed sizes::

    python tests/autograder/reproducible.py a1 20     # prints the cells whose score varies
    python tests/autograder/reproducible.py a2 40 20  # 40 secrets after the test's 20
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from mutants import load_cells, load_mutants  # noqa: E402

ASSIGNMENTS = {"a1": "a1_rnn_cells", "a2": "a2_sentiment", "a3": "a3_char_lm", "a4": "a4_visualizing"}
TEMPLATE_STUDENT = TESTS / "fixtures" / "a1" / "template_style_student.py"
A1_MODES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN_TANH", "rnn_relu": "RNN_RELU"}
A1_KEY = {"A": "GRU", "B": "RNN", "C": "LSTM"}


@dataclass(frozen=True)
class Submission:
    """One submission: the answer cells it replaces and the grade cells it must lose."""
    name: str
    short: str                      # a1 .. a4
    cells: tuple[tuple[str, str], ...]  # (answer cell id, source)
    loses: frozenset[str]


@dataclass(frozen=True)
class Graded:
    """A grade cell as the in-process grading sees it."""
    unit: object                    # harness.Unit
    names: tuple[str, ...]          # notebook names bound to unit.objects, in order
    options: tuple[tuple[str, object], ...] = ()
    points: float | None = None


def submissions() -> list[Submission]:
    out = [Submission(f"{a}/{m.name}", a, ((m.cell, m.source),), m.loses) for a in ASSIGNMENTS
           for m in load_mutants(a)]
    cells, loses = load_cells(TEMPLATE_STUDENT)
    out.append(Submission("a1/template_style_student", "a1", tuple(cells.items()), loses))
    return out


def cells_of(short: str) -> dict[str, Graded]:
    """grade id -> how it is graded, for every grade cell of the assignment."""
    if short == "a1":
        from autograder.a1_rnn_cells import checks as c

        out = {"test_lstm_cell": Graded(c.lstm_cell_unit, ("LSTMCell",)),
               "test_gru_cell": Graded(c.gru_cell_unit, ("GRUCell",)),
               "test_abc_answers": Graded(c.abc_unit, ("A_model", "B_model", "C_model"))}
        for m, mode in A1_MODES.items():
            out[f"test_rnn_model_{m}"] = Graded(c.rnn_model_unit, ("RNNModel",), (("mode", mode),))
            out[f"test_bidir_model_{m}"] = Graded(c.bidir_model_unit, ("BidirRecurrentModel",), (("mode", mode),))
        return out
    module = _test_module(short)
    if short == "a3":
        return {gid: Graded(check.unit, names) for gid, (check, names, _) in module.UNITS.items()}
    return {gid: Graded(check.unit, names) for _, (gid, check, names) in module.UNITS.items()}


def _test_module(short: str):
    import importlib

    return importlib.import_module(f"assignments.{short}.test_checks")  # tests/assignments/<a>/test_checks.py


def namespace(sub: Submission) -> dict:
    """The kernel's namespace after the solution's answer cells ran, with ``sub``'s cells in."""
    if sub.short == "a1":
        from autograder.a1_rnn_cells import reference as ref

        ns = {"__name__": "a1_notebook"}
        exec(compile(Path(ref.__file__).read_text(), ref.__file__, "exec"), ns)
        ns.update(A_model=A1_KEY["A"], B_model=A1_KEY["B"], C_model=A1_KEY["C"])
        for i, (cell, source) in enumerate(sub.cells):
            # A real file, so that inspect.getsource (the guards read the source) finds it.
            path = Path(tempfile.gettempdir()) / f"reproducible_{sub.name.replace('/', '_')}_{i}.py"
            path.write_text(source)
            exec(compile(source, str(path), "exec"), ns)
        return ns
    return _test_module(sub.short)._namespace(_test_module(sub.short).SOURCE_NB, dict(sub.cells))


def affected(sub: Submission) -> list[str]:
    """The grade cells whose score ``sub`` can change: those it must lose, and every cell
    graded from an object its cells define (the others score as the solution does)."""
    table = cells_of(sub.short)
    defined = set()
    for _, source in sub.cells:
        import ast

        for node in ast.parse(source).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return sorted(gid for gid, g in table.items() if gid in sub.loses or defined & set(g.names))


def grade(sub: Submission, secret: bytes, ns: dict | None = None, only=None) -> dict[str, float]:
    """Per-cell scores of ``sub`` under ``secret`` (its affected cells, or ``only``)."""
    import contextlib
    import io

    from autograder.a1_rnn_cells import checks as a1_checks

    ns = namespace(sub) if ns is None else ns
    table = cells_of(sub.short)
    assignment = ASSIGNMENTS[sub.short]
    out = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        key, a1_checks.ABC_KEY_PATH = a1_checks.ABC_KEY_PATH, Path(tmp) / "abc_key.json"
        a1_checks.ABC_KEY_PATH.write_text(json.dumps(A1_KEY))
        try:
            for gid in (only or affected(sub)):
                g = table[gid]
                objects = {p: ns[n] for p, n in zip(g.unit.objects, g.names)}
                result = g.unit.run_local(objects, options=dict(g.options), secret=secret, assignment=assignment,
                                          grade_id=gid)
                out[gid] = result.score
        finally:
            a1_checks.ABC_KEY_PATH = key
    return out


def secrets_for_test(n: int, first: int = 0) -> list[bytes]:
    """``n`` fixed secrets (the test uses the first 20; a sweep can start further on)."""
    import hashlib

    return [hashlib.sha256(f"reproducible secret {i}".encode()).digest() for i in range(first, first + n)]


if __name__ == "__main__":
    import time

    import torch

    torch.set_num_threads(1)
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    for sub in submissions():
        if which and not sub.name.startswith(which):
            continue
        t = time.time()
        ns = namespace(sub)
        runs = [grade(sub, s, ns) for s in secrets_for_test(n, first)]
        varying = {gid: sorted({r[gid] for r in runs}) for gid in runs[0] if len({r[gid] for r in runs}) > 1}
        print(f"{sub.name}: {time.time() - t:.1f}s {'VARIES ' + str(varying) if varying else 'stable'} {runs[0]}",
              flush=True)
