"""jsonschema's IRI format check, loaded on its first use instead of at every start.

jsonschema, on its first import, imports ``rfc3987_syntax`` where it is installed (for its
optional "iri" format checker), and that module builds its grammar parser as it is
imported: 1.5 s of CPU in every process that reads a notebook or starts a Jupyter server
(nbformat and jupyter_events import jsonschema), so in every `nbgrader` command. Almost
none of them ever checks an IRI.

``install()`` puts a stand-in in the module's place: jsonschema finds ``is_valid_syntax``
there and registers its IRI checks as before, and the first call (or any other attribute)
imports the real module, so a check that runs gives the same answer. Where the module is
not installed, or jsonschema is already imported, it does nothing.

For every process of an environment, `make setup` writes a .pth file that calls it at
start-up (``python -m coursectl.lazy_iri install PREFIX``); where ``coursectl`` cannot be
imported (a sandboxed kernel sees only the course's notebook helpers) the line does nothing,
and the kernels' zygote, which starts on the host, forgets both before it preloads (zygote.py).
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

NAME = "rfc3987_syntax"
PTH_NAME = "coursectl-lazy-iri.pth"
# One line, as .pth files run them: quiet where coursectl is out of sight.
PTH_LINE = ("import importlib.util as _u; _u.find_spec('coursectl') is not None and "
            "__import__('coursectl.lazy_iri').lazy_iri.install()\n")


class _StandIn(types.ModuleType):
    """``rfc3987_syntax`` until something other than ``is_valid_syntax`` is asked for."""

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__") and name != "__all__":
            raise AttributeError(name)  # copy/pickle/inspect probes: no import for them
        return getattr(_real(), name)


def _real() -> types.ModuleType:
    """The real module, imported on first need (the stand-in then leaves sys.modules)."""
    current = sys.modules.get(NAME)
    if current is not None and not isinstance(current, _StandIn):
        return current
    import importlib

    sys.modules.pop(NAME, None)
    try:
        return importlib.import_module(NAME)
    except BaseException:
        if current is not None:
            sys.modules[NAME] = current
        raise


def is_valid_syntax(term: str, value: str) -> bool:
    """``rfc3987_syntax.is_valid_syntax``, imported on the first call."""
    return _real().is_valid_syntax(term, value)


def install() -> bool:
    """Put the stand-in in place; True when it is there."""
    if NAME in sys.modules:
        return isinstance(sys.modules[NAME], _StandIn)
    if "jsonschema" in sys.modules:
        return False  # too late: it has imported the real one, or gone without it
    import importlib.util

    spec = importlib.util.find_spec(NAME)
    if spec is None:
        return False  # not installed: jsonschema goes without IRI checks anyway
    stand_in = _StandIn(NAME, "rfc3987_syntax, imported on first use (coursectl.lazy_iri)")
    stand_in.__spec__ = spec
    # inspect.getmodule reads every module's __file__, and torch calls it as it is imported
    # (registering its custom ops): answered here, so importing torch loads no grammar.
    if spec.origin is not None and spec.has_location:
        stand_in.__file__ = spec.origin
    if spec.submodule_search_locations is not None:  # its submodules import as before
        stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.is_valid_syntax = is_valid_syntax
    sys.modules[NAME] = stand_in
    return True


def install_pth(prefix: Path) -> Path:
    """Write the start-up line into the environment at ``prefix`` (its purelib folder)."""
    import sysconfig

    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    site.mkdir(parents=True, exist_ok=True)
    path = site / PTH_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(PTH_LINE)
    tmp.replace(path)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "install":
        sys.exit("usage: python -m coursectl.lazy_iri install PREFIX")
    print(f"wrote {install_pth(Path(sys.argv[2]))}")
