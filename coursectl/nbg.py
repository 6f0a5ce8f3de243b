"""Run the real nbgrader CLI for a course folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ASSIGNMENTS = ("a1_rnn_cells", "a2_sentiment", "a3_char_lm", "a4_visualizing")


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


def check_assignment(course: Path, assignment: str) -> None:
    if not (course / "source" / assignment).is_dir():
        known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir())
        raise CourseError(f"no assignment {assignment!r} in {course / 'source'} (have: {', '.join(known) or 'none'})")


def release(course: Path, assignment: str) -> Path:
    """Regenerate release/<assignment> from source/ with `nbgrader generate_assignment`."""
    check_assignment(course, assignment)
    run_nbgrader(course, "generate_assignment", assignment, "--force", quiet=True)
    return course / "release" / assignment
