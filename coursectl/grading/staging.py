"""Staging: check a submission before grading and write a repaired copy for its job.

Runs in the parent on the raw files, so each problem gets a plain one-line reason
instead of a traceback, and fixes what can be fixed without changing the student's work:
a notebook under the wrong file name is graded under the right one, a non-UTF-8 file is
decoded, a deleted nbgrader cell is put back from the assignment, a duplicated one keeps
its metadata only on its last copy (what nbgrader means to do, without the crash), and
damaged cell metadata is restored. Files nbgrader would read unchanged are copied byte
for byte, so a clean submission is graded exactly as ``nbgrader autograde`` grades it.
The original submission folder is only ever read, and only through safefs: symbolic and
hard links, devices, FIFOs, sockets and unusable names are not followed, read or copied
but named in the problems (a notebook that is one counts as missing: 0 points for it).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .. import cells as nbcells
from . import safefs
from .gradebook import CellDef

MAX_BYTES = 200 * 1024 * 1024
ENCODINGS = ("utf-8", "utf-16", "cp1252", "latin-1")


@dataclass
class Staged:
    student: str
    problems: list[str] = field(default_factory=list)
    graded_notebooks: list[str] = field(default_factory=list)

    @property
    def gradable(self) -> bool:
        return bool(self.graded_notebooks)


def _looks_like_notebook(name: str) -> bool:
    name = name.lower()
    return ".ipynb" in name or name.endswith(".json")


def _read(path: Path, limit: int | None = None) -> bytes:
    """A submitted file's bytes, never through a link (safefs.Refused otherwise)."""
    return safefs.read_under(path.parent, path.name, limit=limit)


def _decode(raw: bytes) -> tuple[str, str]:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8 with a byte-order mark"
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return raw.decode("utf-16"), "utf-16"
    for enc in ENCODINGS:
        if enc == "utf-16":
            continue
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", errors="replace"), "utf-8 with bad bytes replaced"


def _grade_ids(data: dict) -> list[str]:
    return [nbcells.grade_id(c) for c in data.get("cells", []) if isinstance(c, dict)]


def _pick_files(candidates: list[Path], definition: dict[str, list[CellDef]]):
    """Match submitted files to the assignment's notebook names: exact names first, then
    a lone leftover for a lone missing name, else by shared nbgrader cell ids."""
    chosen: dict[str, Path] = {}
    rest = list(candidates)
    for name in definition:
        exact = next((p for p in rest if p.name == f"{name}.ipynb"), None)
        if exact:
            chosen[name] = exact
            rest.remove(exact)
    missing = [n for n in definition if n not in chosen]
    renamed = {}
    for name in missing:
        if not rest:
            break
        if len(missing) == 1 and len(rest) == 1:
            best = rest[0]
        else:
            wanted = {d.name for d in definition[name]}

            def overlap(p: Path) -> int:
                try:
                    return len(set(_grade_ids(json.loads(_decode(_read(p, MAX_BYTES))[0]))) & wanted)
                except (ValueError, OSError, AttributeError):
                    return 0
            best = max(rest, key=overlap)
            if overlap(best) == 0:
                continue
        chosen[name], renamed[name] = best, best.name
        rest.remove(best)
    return chosen, rest, renamed


def _restored_cell(d: CellDef):
    meta = {"grade": d.grade, "grade_id": d.name, "locked": d.locked, "schema_version": 3,
            "solution": d.solution, "task": d.task}
    if d.grade or d.task:
        meta["points"] = d.points
    if d.checksum:
        meta["checksum"] = d.checksum
    metadata = {"nbgrader": meta, "deletable": False}
    if d.locked:
        metadata["editable"] = False
    make = new_code_cell if d.cell_type == "code" else new_markdown_cell
    return make(d.source, metadata=metadata)


def _repair_cells(nb, cells: list[CellDef], problems: list[str], label: str) -> bool:
    """Fix nbgrader cells in place; return True when anything changed."""
    from nbgrader.nbgraderformat import MetadataValidator

    known = {d.name: d for d in cells}
    changed = False
    validator = MetadataValidator()

    # A cell whose type was changed gets its type back (nbgrader would do the same later,
    # but its metadata check runs first and may reject, say, an ungraded markdown answer).
    retyped = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader")
        d = known.get(meta.get("grade_id")) if isinstance(meta, dict) else None
        if d is not None and cell.cell_type != d.cell_type:
            retyped.append(f"{d.name} ({d.cell_type} -> {cell.cell_type})")
            make = new_code_cell if d.cell_type == "code" else new_markdown_cell
            fixed = make(cell.source, metadata=cell.metadata)
            if "id" in cell:
                fixed["id"] = cell["id"]
            nb.cells[i] = fixed
            changed = True
    if retyped:
        problems.append(f"{label}: cell type changed: {', '.join(retyped)} (turned back)")

    # Damaged metadata crashes nbgrader for the whole run: restore or drop it.
    damaged = []
    for cell in nb.cells:
        if "nbgrader" not in cell.metadata:
            continue
        try:
            validator.validate_cell(cell)
        except Exception:
            meta = cell.metadata.get("nbgrader")
            gid = meta.get("grade_id") if isinstance(meta, dict) else None
            if gid in known:
                cell.metadata["nbgrader"] = _restored_cell(known[gid]).metadata["nbgrader"]
            else:
                del cell.metadata["nbgrader"]
            damaged.append(gid or "?")
            changed = True
    if damaged:
        problems.append(f"{label}: nbgrader metadata damaged in cells {', '.join(damaged)} (restored)")

    ids = [nbcells.grade_id(c) for c in nb.cells]
    counts = Counter(i for i in ids if i)
    for gid, n in counts.items():
        if n > 1:
            # nbgrader keeps the last copy; strip the others so its schema check passes
            last = max(i for i, x in enumerate(ids) if x == gid)
            for i, x in enumerate(ids):
                if x == gid and i != last:
                    del nb.cells[i].metadata["nbgrader"]
            problems.append(f"{label}: cell {gid} appears {n} times (graded the last copy)")
            changed = True

    present = {nbcells.grade_id(c) for c in nb.cells}
    missing = [d for d in cells if d.name not in present]
    if missing:
        order = [d.name for d in cells]

        def where(gid):
            return next((i for i, c in enumerate(nb.cells)
                         if nbcells.grade_id(c) == gid), None)
        for d in missing:
            # after the nearest earlier assignment cell still there, else before the next one
            k = order.index(d.name)
            before = [where(g) for g in reversed(order[:k])]
            after = [where(g) for g in order[k + 1:]]
            prev = next((i for i in before if i is not None), None)
            nxt = next((i for i in after if i is not None), None)
            pos = prev + 1 if prev is not None else nxt if nxt is not None else len(nb.cells)
            nb.cells.insert(pos, _restored_cell(d))
        problems.append(f"{label}: cells deleted: {', '.join(d.name for d in missing)} (put back from the assignment)")
        changed = True
    return changed


def _rebuild(data: dict):
    """A valid notebook from a structurally broken one, keeping cell types and sources."""
    nb = new_notebook(metadata=data.get("metadata") if isinstance(data.get("metadata"), dict) else {})
    for c in data.get("cells", []):
        if not isinstance(c, dict):
            continue
        src = c.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
        make = new_code_cell if c.get("cell_type") == "code" else new_markdown_cell
        nb.cells.append(make(src, metadata=meta))
    return nb


def check_notebook(path: Path, name: str, cells: list[CellDef], problems: list[str], renamed_from: str | None):
    """Return (notebook node or None, changed?) for one submitted file; None = ungradable."""
    label = f"{name}.ipynb"
    if renamed_from:
        problems.append(f"wrong file name: {renamed_from!r} graded as {label}")
        label = repr(renamed_from)
    size = os.lstat(path).st_size
    if size > MAX_BYTES:
        problems.append(f"{label}: file too large ({size / 2**20:.0f} MB)")
        return None, False
    try:
        raw = _read(path, MAX_BYTES)
    except safefs.Refused as exc:  # turned into a link or grew since it was listed
        problems.append(f"{label}: {exc}: not read (0 points for it)")
        return None, False
    if not raw.strip():
        problems.append(f"{label}: empty file ({len(raw)} bytes)")
        return None, False
    text, enc = _decode(raw)
    changed = enc != "utf-8"
    if changed:
        problems.append(f"{label}: not UTF-8 (read as {enc})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{label}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
        return None, False
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        problems.append(f"{label}: JSON but not a notebook (no list of cells)")
        return None, False
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        problems.append(f"{label}: invalid notebook structure ({first}); rebuilt from its cells")
        nb, changed = _rebuild(data), True
    if _repair_cells(nb, cells, problems, label):
        changed = True
    return nb, changed


def stage_submission(student: str, src: Path, dest: Path, definition: dict[str, list[CellDef]]) -> Staged:
    """Copy ``src`` (submitted/<student>/<assignment>) to ``dest``, checked and repaired."""
    staged = Staged(student)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        listing = safefs.scan(src, skip=lambda name: name == ".ipynb_checkpoints")
    except safefs.Refused as exc:
        staged.problems.append(f"submission folder refused: {exc}")
        return staged
    wanted = {f"{name}.ipynb" for name in definition}
    refused_notebooks = {}
    for bad in listing.refused:
        if bad.path in wanted:  # a notebook that is a link: graded as missing
            refused_notebooks[bad.path] = bad
        else:
            staged.problems.append(bad.line())
    candidates = [src / rel for rel in listing.files if "/" not in rel and _looks_like_notebook(rel)]
    chosen, extra, renamed = _pick_files(candidates, definition)

    chosen_rel = {p.name for p in chosen.values()}
    for rel in listing.dirs:  # everything else travels as nbgrader would copy it
        (dest / rel).mkdir(parents=True, exist_ok=True)
    for rel in listing.files:
        if rel in chosen_rel:
            continue
        try:
            safefs.copy_under(src, rel, dest / rel)
        except safefs.Refused as exc:
            staged.problems.append(safefs.Refusal(safefs.shown(rel), str(exc)).line())

    for name in definition:
        path = chosen.get(name)
        bad = refused_notebooks.get(f"{name}.ipynb")
        if bad is not None:
            staged.problems.append(f"{bad.line()} (0 points for it)")
        if path is None:
            if bad is None:
                staged.problems.append(f"{name}.ipynb: missing (0 points for it)")
            continue
        nb, changed = check_notebook(path, name, definition[name], staged.problems, renamed.get(name))
        if nb is None:
            continue
        target = dest / f"{name}.ipynb"
        if changed:
            nbformat.write(nb, target)
        else:
            try:
                safefs.copy_under(path.parent, path.name, target)
            except safefs.Refused as exc:
                staged.problems.append(f"{name}.ipynb: {exc}: not read (0 points for it)")
                continue
        staged.graded_notebooks.append(name)
    for path in extra:
        if path.name.lower().endswith(".ipynb"):
            staged.problems.append(f"extra notebook {path.name!r} not graded")
    return staged
