"""Reading nbgrader cells: metadata, solution regions, hidden-test regions and the unit
calls inside them. Every part of the package that needs to know what a cell is asks here.

Light on purpose (standard library only): `course grade`'s own process imports it.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
HIDDEN_NOTE = "# (hidden tests ran here)"


def meta(cell) -> dict:
    """The cell's nbgrader metadata ({} for a plain cell)."""
    m = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nb = m.get("nbgrader", {}) if isinstance(m, dict) else {}
    return nb if isinstance(nb, dict) else {}


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def is_grade(cell) -> bool:
    return bool(meta(cell).get("grade"))


def is_solution(cell) -> bool:
    return bool(meta(cell).get("solution"))


def is_locked(cell) -> bool:
    return bool(meta(cell).get("locked"))


def is_autograded_test(cell) -> bool:
    """A code cell that nbgrader scores automatically (grade, not solution)."""
    return cell.get("cell_type") == "code" and is_grade(cell) and not is_solution(cell)


def source_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def split_hidden(source: str) -> tuple[str, list[str]]:
    """(source without its hidden-test regions, the stripped non-blank lines of those
    regions, markers included). Each region leaves a one-line note in its place."""
    visible, secret, hidden = [], [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            hidden = True
            visible.append(line[: line.index(BEGIN_HIDDEN)] + HIDDEN_NOTE)
        if hidden and line.strip():
            secret.append(line.strip())
        elif not hidden:
            visible.append(line)
        if END_HIDDEN in line:
            hidden = False
    return "\n".join(visible), secret


def hidden_region(source: str) -> str:
    """The code between the hidden-test markers (markers excluded), dedented."""
    inside, hidden = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            hidden = True
            continue
        if END_HIDDEN in line:
            hidden = False
            continue
        if hidden:
            inside.append(line)
    return textwrap.dedent("\n".join(inside))


def without_hidden(source: str) -> str:
    """The source with every hidden region removed entirely (markers included)."""
    out, hidden = [], False
    for line in source.splitlines():
        if BEGIN_HIDDEN in line:
            hidden = True
        elif END_HIDDEN in line:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out).rstrip()


def solution_lines(source: str) -> list[str]:
    """Stripped non-blank lines inside solution regions (markers excluded)."""
    out, inside = [], False
    for line in source.splitlines():
        if BEGIN_SOLUTION in line:
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif inside and line.strip():
            out.append(line.strip())
    return out


@dataclass
class UnitCall:
    """``check_x(A, B, "LSTM", points=4)`` in a hidden region, imported from ``module``."""
    module: str
    function: str
    names: list[str | None] = field(default_factory=list)   # notebook names (None: a literal)
    literals: list[object] = field(default_factory=list)     # the literal arguments, in order
    keywords: dict = field(default_factory=dict)             # literal keyword arguments
    keyword_names: dict = field(default_factory=dict)        # keyword -> notebook name


def unit_calls(hidden: str) -> list[UnitCall] | None:
    """The unit calls of a hidden region made only of ``from autograder... import`` lines
    and calls with names and literals as arguments; None for any other hidden code."""
    try:
        tree = ast.parse(hidden)
    except SyntaxError:
        return None
    imported: dict[str, tuple[str, str]] = {}
    calls: list[UnitCall] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
            continue
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id in imported):
            return None
        call = node.value
        module, function = imported[call.func.id]
        uc = UnitCall(module, function)
        for arg in call.args:
            if isinstance(arg, ast.Name):
                uc.names.append(arg.id)
            elif isinstance(arg, ast.Constant):
                uc.names.append(None)
                uc.literals.append(arg.value)
            else:
                return None
        for kw in call.keywords:
            if kw.arg is None:
                return None
            if isinstance(kw.value, ast.Constant):
                uc.keywords[kw.arg] = kw.value.value
            elif isinstance(kw.value, ast.Name):
                uc.keyword_names[kw.arg] = kw.value.id
            else:
                return None
        calls.append(uc)
    return calls or None
