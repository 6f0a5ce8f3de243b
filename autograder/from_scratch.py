"""The from-scratch rule a unit declares: what a cell built "from primitives" may not use.

A unit declares it with ``Unit(..., policy=FromScratch(...))`` (a1's cells and models do);
the trusted chain (``coursectl.trusted``) gives the policy the student's cells before the
notebook runs (``review``) and knows nothing else about it. Three outcomes per unit:

* **fails**: a forbidden layer or kernel is named literally (``torch.nn.LSTMCell``,
  ``torch.lstm_cell``): no points, as before (``literal_scan``, by default ``static_guard``);
* **held for review**: somewhere in the student's cells a feature that can reach code by a
  computed name (``eval``, ``pickle``, ``vars(torch)[...]``, ``torch.ops``, a magic that runs
  code, a cell Python cannot read...). The checks still run, but their points are withheld
  until the instructor has read the construct named in the report and releases them
  (``course held``); nobody is failed for a construct that may be honest;
* nothing: graded as usual.

Cells are read the way IPython runs them: ``IPython.core.inputtransformer2`` turns magics
and shell escapes into the calls they are (``get_ipython().run_line_magic('time', ...)``),
and the code given to a magic that runs code (``%time``, ``%%capture``...) is read as well.

While the probes run, a second layer in the kernel (``kernel_side.OpGuard``, installed by
the grader's first cell before any student code) makes the ops in ``kernel_ops`` raise, so
a use this reading missed still fails the checks. A third layer is optional: with
``probe_notes``, every probe sends what it built (``{"value": ..., "notes": [...]}``), the
unit's checks read the notes first (``wrap_check``) and a forbidden object in them fails
the whole unit with one message (``overrule``).
"""
from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from typing import Callable

from .static_guard import dotted

HELD_NAME = "held for review"

# Calls that run or reach code by a computed name wherever they appear.
DYNAMIC_CALLS = {"eval", "exec", "compile", "__import__", "vars", "globals", "locals", "breakpoint"}
# Built-ins that take an attribute name: fine with a literal name, held with a computed one.
NAMED_ACCESS = {"getattr", "setattr", "delattr", "hasattr"}
# Attributes that reach code, namespaces or frames.
DUNDER_ATTRS = {"__dict__", "__getattribute__", "__getattr__", "__wrapped__", "__globals__", "__code__",
                "__closure__", "__builtins__", "__subclasses__", "__reduce__", "__reduce_ex__",
                "__setstate__", "__loader__", "__spec__", "__import__", "__torch_function__",
                "__torch_dispatch__", "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame",
                "tb_frame", "cr_frame"}
# Modules (and their submodules) whose import reaches code by name, deserialises objects
# or runs other programs.
MODULES = {"marshal", "pickle", "_pickle", "cPickle", "pickletools", "dill", "cloudpickle", "copyreg",
           "copy_reg", "shelve", "jsonpickle", "joblib", "importlib", "imp", "pkgutil", "runpy", "code",
           "codeop", "ctypes", "cffi", "inspect", "gc", "builtins", "__builtin__", "subprocess",
           "multiprocessing", "pty", "zipimport", "types", "dis", "opcode", "operator", "IPython",
           "ipykernel", "autograder", "coursectl", "nbformat", "nbclient", "sys"}
# ... of which only these names are fine (``from types import SimpleNamespace``).
HARMLESS_FROM = {"types": {"SimpleNamespace"}, "IPython.display": {"display", "HTML", "Image", "Markdown", "clear_output"}, "operator": {"itemgetter", "add", "mul", "sub", "neg"},
                 "sys": {"stdout", "stderr", "version", "version_info", "platform", "float_info", "maxsize"}}
# ``import sys`` itself is fine; these of its attributes are not.
ATTRS_OF = {"sys": {"modules", "_getframe", "settrace", "setprofile", "meta_path", "path_hooks",
                    "path_importer_cache", "addaudithook", "_current_frames", "exc_info", "exception"},
            "os": {"system", "popen", "execv", "execve", "execl", "execlp", "execvp", "execvpe", "spawnl",
                   "spawnv", "spawnve", "spawnlp", "posix_spawn", "posix_spawnp", "fork", "forkpty"},
            "types": {"FunctionType", "CodeType", "MethodType", "LambdaType", "ModuleType", "new_class",
                      "BuiltinFunctionType"},
            "operator": {"attrgetter", "methodcaller"},
            # loaders that can build arbitrary objects
            "yaml": {"load", "load_all", "full_load", "unsafe_load", "unsafe_load_all", "Loader", "UnsafeLoader"},
            "pandas": {"read_pickle"}, "pd": {"read_pickle"}}
# Parts of torch that reach operators by name, run compiled or loaded code, or change how
# torch dispatches: held wherever they appear after a torch root (``torch.ops.aten``).
TORCH_PARTS = {"ops", "library", "jit", "hub", "load", "package", "fx", "export", "compile", "overrides",
               "serialization", "functional_call", "stateless", "_C", "_VF", "_ops", "_dynamo"}
TORCH_MODULES = ("torch.ops", "torch.library", "torch.jit", "torch.hub", "torch.package", "torch.fx",
                 "torch.export", "torch.overrides", "torch.serialization", "torch.func", "torch.nn.utils.stateless",
                 "torch.utils._python_dispatch", "torch._")
TORCH_FROM = {"torch": {"ops", "library", "jit", "hub", "load", "package", "fx", "export", "compile",
                        "overrides", "serialization", "_C", "_VF", "_ops"},
              "torch.func": {"functional_call"}, "torch.nn.utils": {"stateless"}}
# Magics that only show things or set up plotting; every other magic may run code.
QUIET_MAGICS = {"matplotlib", "pinfo", "pinfo2", "pdoc", "pdef", "who", "who_ls", "whos", "pwd", "lsmagic",
                "quickref", "history", "autoreload", "precision"}
# Magics whose argument (line) or body (cell) is Python code that IPython runs.
CODE_MAGICS = {"time", "timeit", "prun", "capture", "debug", "python", "python3", "pypy", "macro"}


@dataclass(frozen=True)
class Finding:
    """A construct that holds from-scratch units: what it is and where (1-based)."""
    construct: str
    cell: int
    line: int
    cell_id: str = ""

    def where(self) -> str:
        cell = f"cell {self.cell}" + (f" ({self.cell_id})" if self.cell_id else "")
        return f"{cell}, line {self.line}" if self.line else cell

    def text(self) -> str:
        return f"{self.construct} in {self.where()}"


@dataclass
class Reading:
    """The student's cells as IPython runs them, read once per notebook.

    ``sources``: Python text to scan for literal uses (the transformed cells and the code
    given to code-running magics); ``findings``: every construct that holds a unit."""
    sources: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    _scans: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=4)  # one notebook's cells are reviewed once per unit: read them once
def _read_once(cells: tuple[tuple[int, str, str], ...]) -> Reading:
    return read_cells(list(cells))


def read_cells(cells: list[tuple[int, str, str]]) -> Reading:
    """Read ``(position, cell id, source)`` of every student-editable code cell."""
    reading = Reading()
    for position, cell_id, source in cells:
        _read(reading, source, position, cell_id, 0, depth=0)
    return reading


def _transform(source: str) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _read(reading: Reading, source: str, position: int, cell_id: str, offset: int, depth: int,
          what: str = "") -> None:
    try:
        python = _transform(source)
        tree = ast.parse(python)
    except (SyntaxError, ValueError) as exc:  # never skipped: an unreadable cell cannot be checked
        line = getattr(exc, "lineno", None) or 0
        reading.findings.append(Finding(f"code Python cannot read{what} ({type(exc).__name__}: "
                                        f"{getattr(exc, 'msg', exc)})", position, offset + line, cell_id))
        return
    reading.sources.append(python)
    finder = _Dynamic()
    finder.visit(tree)
    for construct, line in finder.found:
        reading.findings.append(Finding(construct, position, offset + line, cell_id))
    for code, line, magic in finder.code_args:
        if depth < 5:  # a magic inside a magic inside...: bounded
            _read(reading, _code_of(code), position, cell_id, offset + line - 1, depth + 1,
                  what=f" (given to %{magic})")


def _code_of(arg: str) -> str:
    """The code part of a line magic's argument (``-n1 -r1 x = f()`` -> ``x = f()``)."""
    text = arg
    while True:
        try:
            ast.parse(text)
            return text
        except SyntaxError:
            m = re.match(r"\s*-\S+\s*(.*)", text, re.S)
            if not m:
                return arg
            text = m.group(1)


def _literal(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Dynamic(ast.NodeVisitor):
    """Collect (construct, line) for every dynamic feature; (code, line, magic) for code
    handed to magics that run it."""

    def __init__(self):
        self.found: list[tuple[str, int]] = []
        self.code_args: list[tuple[str, int, str]] = []
        self.aliases: dict[str, str] = {}  # local name -> module or module.name it stands for
        self._called: set[int] = set()

    def _hit(self, construct: str, node) -> None:
        self.found.append((construct, getattr(node, "lineno", 0)))

    # ------------------------------------------------------------------ imports

    def visit_Import(self, node):
        for a in node.names:
            self._module(a.name, node)
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level:
            self._hit(f"a relative import (from {'.' * node.level}{module})", node)
            return
        for a in node.names:
            full = f"{module}.{a.name}"
            if module.split(".")[0] in MODULES and a.name not in HARMLESS_FROM.get(module, ()):
                self._hit(f"from {module} import {a.name}", node)
            elif a.name in TORCH_FROM.get(module, ()) or a.name == "*" and module.startswith("torch") \
                    or self._torch_module(full) or self._torch_module(module):
                self._hit(f"from {module} import {a.name}", node)
            elif module.split(".")[0] == "torch" and a.name.startswith("_"):
                self._hit(f"from {module} import {a.name}", node)
            self.aliases[a.asname or a.name] = full

    def _module(self, name: str, node) -> None:
        top = name.split(".")[0]
        if top in MODULES and top not in ("sys", "types", "operator") or self._torch_module(name):
            self._hit(f"import {name}", node)

    @staticmethod
    def _torch_module(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") or (m.endswith("_") and name.startswith(m))
                   for m in TORCH_MODULES)

    # ------------------------------------------------------------------ calls and names

    def visit_Call(self, node):
        func = node.func
        self._called.add(id(func))
        if any(k.arg == "allow_pickle" for k in node.keywords):  # numpy's loaders unpickle objects with it
            self._hit("allow_pickle=...", node)
        name = func.id if isinstance(func, ast.Name) else None
        if name in DYNAMIC_CALLS:
            self._hit(f"{name}(...)", node)
        elif name in NAMED_ACCESS and (len(node.args) < 2 or not _literal(node.args[1])):
            self._hit(f"{name}(...) with a computed attribute name", node)
        chain = dotted(func)
        if chain and chain[0] == "get_ipython" or (isinstance(func, ast.Attribute)
                                                   and isinstance(func.value, ast.Call)
                                                   and dotted(func.value.func) == ["get_ipython"]):
            self._ipython(node)
            for arg in node.args:  # the literal magic arguments are read as code, not walked
                if not _literal(arg):
                    self.visit(arg)
            return
        self.generic_visit(node)

    def _ipython(self, node) -> None:
        func = node.func
        method = func.attr if isinstance(func, ast.Attribute) else ""
        args = node.args
        if method in ("run_line_magic", "run_cell_magic") and args and _literal(args[0]):
            magic = args[0].value
            if magic in QUIET_MAGICS or (magic in ("load_ext", "reload_ext") and len(args) > 1
                                         and _literal(args[1]) and args[1].value.strip() == "autoreload"):
                return
            self._hit(f"the magic %{'%' if method == 'run_cell_magic' else ''}{magic} (it can run code)", node)
            body = args[-1] if method == "run_cell_magic" and len(args) == 3 else (
                args[1] if len(args) > 1 else None)
            if magic in CODE_MAGICS and body is not None and _literal(body):
                self.code_args.append((body.value, node.lineno + (1 if method == "run_cell_magic" else 0), magic))
            return
        if method in ("system", "getoutput"):
            self._hit("a shell command (!...)", node)
            return
        self._hit(f"get_ipython(){'.' + method if method else ''}", node)

    def visit_Name(self, node):
        if id(node) not in self._called and isinstance(node.ctx, ast.Load) and \
                node.id in DYNAMIC_CALLS | NAMED_ACCESS | {"__builtins__", "get_ipython", "__import__"}:
            self._hit(f"{node.id} (used as a value)", node)

    def visit_Attribute(self, node):
        if node.attr in DUNDER_ATTRS:
            self._hit(f".{node.attr}", node)
        chain = dotted(node)
        if chain and len(chain) >= 2:
            root = self.aliases.get(chain[0], chain[0])
            full = root.split(".") + chain[1:]
            if full[0] in ("torch", "nn") and len(full) >= 2:
                bad = next((p for p in full[1:] if p in TORCH_PARTS or (p.startswith("_") and not p.startswith("__"))),
                           None)
                if bad is not None:
                    self._hit(".".join(full[:full.index(bad) + 1]), node)
                    return  # one finding per chain
            elif full[0] in ATTRS_OF and full[1] in ATTRS_OF[full[0]]:
                self._hit(f"{full[0]}.{full[1]}", node)
                return
        self.generic_visit(node)


# ---------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Verdict:
    """What the policy decided for one unit: ``fails`` (no points) or held (``findings``)."""
    name: str                     # the check name shown with it ("no torch.nn recurrent layers")
    message: str
    fails: bool
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class FromScratch:
    """A unit whose objects must be written from primitives; see the module docstring.

    ``name``: the verdict's check name; ``literal_scan(sources, isolated=...)`` returns
    {top-level name: message} for literal uses (``static_guard.scan`` for torch's recurrent
    layers); ``kernel_ops``: torch op names (``lstm_cell``) that raise in the kernel while
    the unit's probes run; ``advice``: what to do instead, shown to the student."""
    name: str
    literal_scan: Callable[..., dict]
    kernel_ops: tuple[str, ...]
    advice: str = ""
    everything: str = "*"         # literal_scan's key for code that changes objects at run time
    # notes -> message or None: what the probes saw built (e.g. ``guards.forbidden``); None: no notes
    probe_notes: Callable | None = None

    def review(self, reading, names: list[str], *, isolated: tuple[str, ...] = ()) -> Verdict | None:
        """The verdict for a unit grading notebook objects ``names``; None: grade as usual.
        ``reading``: a ``Reading``, or the student's code cells as ``(position, cell id,
        source)`` (read once per notebook). ``isolated``: names the unit replaces with the
        grader's own while it grades."""
        if not isinstance(reading, Reading):
            reading = _read_once(tuple((int(p), str(i), str(s)) for p, i, s in reading))
        key = (id(self.literal_scan), tuple(isolated))
        if key not in reading._scans:
            reading._scans[key] = self.literal_scan(reading.sources, isolated=tuple(isolated))
        flags = reading._scans[key]
        found = next((flags[n] for n in [*names, self.everything] if n in flags), None)
        if found is not None:
            return Verdict(self.name, found, True)
        if reading.findings:
            return Verdict(HELD_NAME, held_message(reading.findings, self.advice), False, tuple(reading.findings))
        return None

    def kernel_plan(self) -> dict:
        """What the kernel's op guard needs (sent with the unit's probe plan)."""
        return {"ops": list(self.kernel_ops), "advice": self.advice}

    def wrap_check(self, check):
        """``check`` with a judge that reads each probe's notes before its value (the unit
        calls this for each check it registers); unchanged without ``probe_notes``."""
        if self.probe_notes is None:
            return check
        notes_rule = self.probe_notes

        @functools.wraps(check)
        def guarded(rng, **options):
            probes, judge = check(rng, **options)
            single = not isinstance(probes, (list, tuple))

            def judge_notes(out):
                outs = [out] if single else out
                for one in outs:
                    found = notes_rule(one["notes"])
                    if found:
                        judge_notes.forbidden = found
                        raise AssertionError(found)
                values = [one["value"] for one in outs]
                judge(values[0] if single else values)
            return probes, judge_notes
        return guarded

    def overrule(self, plan, result):
        """The whole unit failed with one message when a probe's notes showed a forbidden
        object (see ``wrap_check``); None: the checks' verdict stands."""
        for pc in plan.checks:
            found = getattr(pc.judge, "forbidden", None)
            if found:
                return type(result).failed(result.unit, result.grade_id, result.points, self.name, found)
        return None


def held_message(findings, advice: str = "", limit: int = 4) -> str:
    shown = "; ".join(f.text() for f in findings[:limit])
    more = f" (and {len(findings) - limit} more)" if len(findings) > limit else ""
    return (f"held for review: your notebook uses {shown}{more}; these can reach code by a computed "
            "name, so the instructor reads them before these points count"
            + (f" ({advice})" if advice else ""))
