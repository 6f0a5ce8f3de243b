"""What every assignment's probe module may import: its source runs in the student's
kernel, so torch, numpy (and what an assignment adds) and the standard library, never
the grader's own package. Shared by the assignments' checks tests."""
from __future__ import annotations

import ast
import sys

KERNEL_SAFE = frozenset({"torch", "numpy"}) | frozenset(sys.stdlib_module_names)


def imported_roots(source: str) -> set[str]:
    """Top-level packages ``source`` imports; a relative import fails the assertion."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in a probe module"
            roots.add(node.module.split(".")[0])
    return roots


def assert_kernel_safe(source: str, extra: frozenset[str] = frozenset()) -> None:
    roots = imported_roots(source)
    assert roots <= KERNEL_SAFE | extra, sorted(roots - KERNEL_SAFE - extra)
    assert "autograder" not in source, "the probe module names the grader's package"
