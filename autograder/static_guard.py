"""Find torch's recurrent layers and fused kernels in submitted source, without running it.

The grader cannot trust anything the kernel reports about itself, so the trusted side
reads the student's cells as text. ``scan(sources)`` returns, for each top-level name
(a class, function or assigned variable) whose definition uses a forbidden layer, a
message naming what was used. Caught:

* ``nn.LSTM``, ``torch.nn.GRUCell``, ``torch.nn.modules.rnn.RNNCell`` ... (any dotted name
  ending in one of torch's recurrent classes, from an alias of torch or its modules);
* ``from torch.nn import LSTMCell as Cell`` and later uses of ``Cell``;
* torch's kernels by name: ``torch.lstm_cell``, ``torch._VF.gru_cell``, ``_VF``,
  ``torch._C._VariableFunctions``;
* reaching them by string: ``getattr(nn, "LSTM" + "Cell")``, ``importlib``/``__import__``
  of torch modules, ``eval``/``exec`` with computed code near torch.

A definition that uses one anywhere (its methods, its base classes, its decorators) is
flagged under its own name, and so is every later top-level definition that refers to a
flagged name. A top-level statement that uses a forbidden layer, or a flagged name, and
defines nothing (registering an IPython hook, calling ``exec``, rebinding through
``globals()``) can change any graded object at run time: it flags everything, under the
key ``EVERYTHING``.
"""
from __future__ import annotations

import ast

RECURRENT_CLASSES = {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "RNNBase", "RNNCellBase"}
KERNELS = {"lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell",
           "rnn_relu_cell", "_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "_VF", "_VariableFunctions"}
TORCH_ROOTS = {"torch", "nn"}
EVERYTHING = "*"
DYNAMIC = {"getattr", "__import__", "eval", "exec", "compile", "import_module", "__getattribute__", "vars"}


def dotted(node) -> list[str] | None:
    """``torch.nn.LSTM`` as ["torch", "nn", "LSTM"]; None for anything but a dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str]):
        self.aliases = aliases  # local name -> what it stands for ("torch.nn", "torch.nn.LSTM")
        self.found: str | None = None

    def _hit(self, what: str):
        if self.found is None:
            self.found = what

    def visit_Attribute(self, node):
        chain = dotted(node)
        if chain:
            root = self.aliases.get(chain[0], chain[0])
            full = root.split(".") + chain[1:]
            if full[0] in TORCH_ROOTS or self.aliases.get(chain[0], "").startswith("torch"):
                last = full[-1]
                if last in RECURRENT_CLASSES:
                    self._hit(f"torch.nn.{last}")
                elif last in KERNELS or any(p in ("_VF", "_C") for p in full):
                    self._hit(f"torch.{last}")
        elif node.attr in KERNELS - {"lstm", "gru"}:
            self._hit(f"torch.{node.attr}")
        self.generic_visit(node)

    def visit_Name(self, node):
        target = self.aliases.get(node.id)
        if target and target.startswith("torch"):
            last = target.split(".")[-1]
            if last in RECURRENT_CLASSES or last in KERNELS:
                self._hit(target)

    def visit_Call(self, node):
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in DYNAMIC and node.args:
            strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if any(s.split(".")[-1] in RECURRENT_CLASSES | KERNELS or s.startswith("torch") for s in strings):
                self._hit(f"{name}({', '.join(map(repr, strings))})")
            elif name in ("getattr", "__getattribute__") and len(node.args) >= 2 and not isinstance(node.args[1], ast.Constant):
                obj = dotted(node.args[0])
                if obj and (self.aliases.get(obj[0], obj[0]).split(".")[0] in TORCH_ROOTS):
                    self._hit(f"{name} with a computed name on {'.'.join(obj)}")
            elif name in ("__import__", "import_module", "eval", "exec", "compile"):
                self._hit(f"{name}(...) with computed code")
        self.generic_visit(node)

    def visit_Subscript(self, node):
        base = dotted(node.value)
        if base and base[-1] in ("__dict__", "modules") and not isinstance(node.slice, ast.Constant):
            root = self.aliases.get(base[0], base[0]).split(".")[0]
            if root in TORCH_ROOTS or base[0] == "sys":
                self._hit(f"{'.'.join(base)}[...] with a computed key")
        elif base and base[-1] in ("__dict__", "modules") and isinstance(node.slice, ast.Constant):
            key = str(node.slice.value)
            if key.split(".")[-1] in RECURRENT_CLASSES | KERNELS or key.startswith("torch"):
                self._hit(f"{'.'.join(base)}[{key!r}]")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value in KERNELS - {"lstm", "gru"}:
            self._hit(f"the name {node.value!r}")


def _aliases(tree: ast.AST, aliases: dict[str, str]) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in ("torch", "importlib"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torch":
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"


def _defined(stmt) -> list[str]:
    if isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return [stmt.name]
    names = []
    targets = []
    if isinstance(stmt, ast.Assign):
        targets = stmt.targets
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.append(n.id)
            elif isinstance(n, ast.Attribute):
                chain = []
                while isinstance(n, ast.Attribute):
                    n = n.value
                if isinstance(n, ast.Name):
                    names.append(n.id)  # LSTMCell.forward = ... flags LSTMCell
    return names


def scan(sources: list[str], isolated: tuple[str, ...] = ()) -> dict[str, str]:
    """name -> message, for every top-level name whose definition uses a forbidden layer.

    ``isolated``: names whose flags do not spread to the definitions that use them (a unit
    that swaps them for the grader's stand-ins while it grades, as a1's models do)."""
    aliases: dict[str, str] = {"nn": "torch.nn"}
    trees = []
    for src in sources:
        try:
            tree = ast.parse(_as_run(src))
        except (SyntaxError, ValueError):
            # Not skipped by the rule: from_scratch holds every unit for a cell it cannot read.
            continue
        _aliases(tree, aliases)
        trees.append(tree)
    flagged: dict[str, str] = {}
    statements = [stmt for tree in trees for stmt in tree.body
                  if not isinstance(stmt, (ast.Import, ast.ImportFrom))]
    # Repeat until nothing new is flagged: a definition may refer to one flagged later.
    changed = True
    while changed:
        changed = False
        for stmt in statements:
            finder = _Finder(aliases)
            finder.visit(stmt)
            found = finder.found
            if found is None:
                used = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)} & set(flagged)
                used -= {EVERYTHING, *isolated}
                if not used:
                    continue
                found = f"{sorted(used)[0]} (which uses a forbidden layer)"
            for name in _defined(stmt) or [EVERYTHING]:
                if name not in flagged:
                    what = "code in your notebook that changes objects at run time" if name == EVERYTHING else name
                    flagged[name] = (f"{what} uses {found}, which this assignment does not allow "
                                     "(build the recurrence from nn.Linear and tensor operations)")
                    changed = True
    return flagged


def _as_run(src: str) -> str:
    """The cell as IPython runs it: magics and shell escapes become the calls they are
    (``get_ipython().run_line_magic(...)``), never dropped; ``from_scratch`` reads the code
    they are given."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(src)
