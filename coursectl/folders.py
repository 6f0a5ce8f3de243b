"""The course folder: finding it, checking an assignment is there, and what nbgrader
needs beside it (the exchange folder, the HTML templates)."""
from __future__ import annotations

from pathlib import Path

from .errors import CourseError


def find_course_root(start: Path | None = None) -> Path:
    """The nearest folder upwards that holds nbgrader_config.py and source/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir():
            return folder
    raise CourseError(f"no course folder (with nbgrader_config.py and source/) at or above {here}")


def check_assignment(course: Path, assignment: str) -> None:
    if not (course / "source" / assignment).is_dir():
        known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
        raise CourseError(f"no assignment {assignment!r} in {course / 'source'} (have: {', '.join(known) or 'none'})")


EXCHANGE_MODE = 0o1777  # like /tmp: nbgrader needs every user (students too) to write here


def ensure_exchange(root: str | Path) -> Path:
    """Create nbgrader's exchange folder if it is missing, writable for every user with the
    sticky bit, as nbgrader's docs ask of /srv/nbgrader/exchange (`nbgrader list` and the
    formgrader's Release/Collect fail without it). An existing folder is left as it is; a
    folder that cannot be created is left to nbgrader to report."""
    root = Path(root)
    if not root.is_dir():
        try:
            root.mkdir(parents=True)
            root.chmod(EXCHANGE_MODE)
        except OSError:
            pass
    return root


def html_template_dirs() -> list[str]:
    """Template folders for nbgrader's HTML pages (formgrader, feedback): the course's own
    (a MathJax loader that works offline) ahead of nbgrader's, which must stay listed."""
    import nbgrader

    ours = Path(__file__).with_name("templates")
    theirs = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    return [str(ours), str(theirs)]
