"""Run the real nbgrader CLI for a course folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


class CourseError(RuntimeError):
    """A problem the instructor can fix; printed without a traceback."""


def find_course_root(start: Path | None = None) -> Path:
    """The nearest folder upwards that holds nbgrader_config.py and source/."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "nbgrader_config.py").is_file() and (folder / "source").is_dir():
            return folder
    raise CourseError(f"no course folder (with nbgrader_config.py and source/) at or above {here}")


def path_with_tools(path: str) -> str:
    """PATH with this interpreter's bin folder first, so that the nbgrader and alembic
    installed beside it are found without an activated environment."""
    bindir = str(Path(sys.executable).parent)
    parts = [p for p in path.split(os.pathsep) if p and p != bindir]
    return os.pathsep.join([bindir, *parts])


def nbgrader_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = path_with_tools(env.get("PATH", ""))
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def run_nbgrader(course: Path, *args: str, quiet: bool = False, timeout: float | None = None):
    """Run ``nbgrader ARGS`` in ``course``; raise CourseError with its log on failure."""
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe) if exe.exists() else "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course, env=nbgrader_env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise CourseError(f"`nbgrader {' '.join(args)}` failed:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    if not quiet and proc.stdout.strip():
        print(proc.stdout.rstrip())
    return proc


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


def check_assignment(course: Path, assignment: str) -> None:
    if not (course / "source" / assignment).is_dir():
        known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
        raise CourseError(f"no assignment {assignment!r} in {course / 'source'} (have: {', '.join(known) or 'none'})")


def release(course: Path, assignment: str) -> Path:
    """Regenerate release/<assignment> from source/ with `nbgrader generate_assignment`."""
    check_assignment(course, assignment)
    run_nbgrader(course, "generate_assignment", assignment, "--force", quiet=True)
    return course / "release" / assignment


def regenerate_feedback(course: Path, assignment: str, students: list[str] | None = None) -> list[Path]:
    """Rewrite feedback/<student>/<assignment>/ from autograded/ and the gradebook with
    `nbgrader generate_feedback` (the course's feedback preprocessors, as in `course grade`),
    so that hand grades and comments from the formgrader show. Returns the HTML files."""
    check_assignment(course, assignment)
    graded = sorted(p.parent.name for p in (course / "autograded").glob(f"*/{assignment}") if p.is_dir())
    missing = sorted(set(students or []) - set(graded))
    if missing or not graded:
        who = f" for {', '.join(missing)}" if missing else ""
        raise CourseError(f"nothing autograded{who} in {course / 'autograded'} for {assignment}; "
                          f"run `course grade {assignment}` first")
    if students:  # nbgrader takes one --student at a time
        for student in sorted(set(students)):
            run_nbgrader(course, "generate_feedback", assignment, "--force", f"--student={student}", quiet=True)
        graded = sorted(set(students))
    else:
        run_nbgrader(course, "generate_feedback", assignment, "--force", quiet=True)
    return sorted(f for s in graded for f in (course / "feedback" / s / assignment).glob("*.html"))
