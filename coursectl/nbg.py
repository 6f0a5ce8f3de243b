"""Run the real nbgrader CLI for a course folder (release, feedback, any command).

The error type and the course-folder helpers live in errors.py and folders.py; they are
imported here too, for the modules and nbgrader_config.py files that import them from here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .errors import CourseError
from .folders import (EXCHANGE_MODE, check_assignment, ensure_exchange,  # noqa: F401 (see above)
                      find_course_root, html_template_dirs)


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
