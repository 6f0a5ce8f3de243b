"""Where datasets and caches live: ``$COURSE_DATA_DIR`` or ``~/.cache/seqcourse``."""
from __future__ import annotations

import os
from pathlib import Path

from data_scripts.paths import data_dir, dataset_dir  # noqa: F401  (coursekit uses data_scripts, not back)

DATA_LABEL = "<course data>"


def shown(path) -> str:
    """``path`` as the notebooks print it: below the data folder as ``<course data>/...``,
    anything else by its last name. What a notebook prints ends up in students' feedback,
    and the grading machine's folders (its data root, its temporary folders) are no
    business of theirs."""
    path = Path(path)
    try:
        rel = path.resolve().relative_to(data_dir().expanduser().resolve())
    except ValueError:
        return path.name
    return f"{DATA_LABEL}/{rel.as_posix()}" if rel.parts else DATA_LABEL


def save_npz_atomic(path: Path, what: str = "cache", **arrays) -> None:
    """Write arrays to ``path`` under a temp name, then rename.

    A reader never sees half a file. A read-only data folder only costs the cache,
    not the result: the failure is printed and the caller carries on.
    """
    import tempfile

    import numpy as np

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    except OSError as exc:
        print(f"(could not cache {what} at {path}: {exc})")
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; others sharing the data folder read it too
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        print(f"(could not cache {what} at {path}: {exc})")
