"""Where datasets live: ``$COURSE_DATA_DIR`` or ``~/.cache/seqcourse``.

Defined here, below coursekit: coursekit uses data_scripts (to build and read the
datasets), never the other way round."""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    root = os.environ.get("COURSE_DATA_DIR")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "seqcourse"
    return path


def dataset_dir(name: str, offline: bool) -> Path:
    """Folder of one dataset: ``<data_dir>/<name>/real`` or ``.../offline``."""
    return data_dir() / name / ("offline" if offline else "real")
