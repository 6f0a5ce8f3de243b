"""The `course` command: data, release, grade, feedback, held, demo."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import CourseError
from .folders import find_course_root


def _cmd_data(args) -> None:
    import data_scripts
    from data_scripts.download import ArchiveError, DownloadError

    try:
        _build_data(data_scripts, args)
    except KeyError as exc:
        raise CourseError(exc.args[0]) from None
    except (DownloadError, ArchiveError) as exc:
        raise CourseError(str(exc)) from None


def _build_data(data_scripts, args) -> None:
    if args.real:
        for name in args.real:
            print(f"{name}: {data_scripts.fetch_real(name, force=args.force)}")
        return
    from coursekit.prepare import warm_caches

    names = args.names or data_scripts.offline_names()
    for name in names:
        print(f"{name}: {data_scripts.build_offline(name, force=args.force)}")
        for what in warm_caches(name):  # graded kernels cannot write the data folder
            print(f"  cached: {what}")


def _cmd_release(args) -> None:
    from .assignments import ASSIGNMENTS

    course = find_course_root(args.course_dir)
    names = list(ASSIGNMENTS) if args.assignment == "all" else [args.assignment]
    for name in names:
        _release_one(course, name, args.bundle)


def _release_one(course, assignment: str, bundle: bool) -> None:
    from .nbg import release

    out = release(course, assignment)
    print(f"released {assignment} -> {out}")
    if bundle:
        from .bundle import build_bundle

        print(f"student bundle -> {build_bundle(course, assignment)}")


def _cmd_grade(args) -> None:
    from .grading import grade_from_cli

    grade_from_cli(find_course_root(args.course_dir), args)


def _cmd_assets(args) -> None:
    from .assets import make_a1_abc_figure

    print(f"figure -> {make_a1_abc_figure(find_course_root(args.course_dir), epochs=args.epochs)}")


def _cmd_feedback(args) -> None:
    from .nbg import regenerate_feedback

    files = regenerate_feedback(find_course_root(args.course_dir), args.assignment, args.student or None)
    print(f"feedback regenerated for {len(files)} notebook(s):")
    for path in files:
        print(f"  {path}")


def _cmd_held(args) -> None:
    from . import held

    course = find_course_root(args.course_dir)
    if args.release:
        units = held.release(course, args.assignment, args.release, args.unit)
        print(f"released for {args.release}:")
        print(held.describe(units))
        print(f"run `course feedback {args.assignment} --student {args.release}` to show it in the feedback")
        return
    print(held.describe(held.held_units(course, args.assignment)))


def _cmd_demo(args) -> None:
    from .demo import run_demo

    # For `demo` the course folder is the one the demo builds: --course-dir and --dir agree.
    where = [Path(d).resolve() for d in (args.course_dir, args.dir) if d]
    if len(set(where)) > 1:
        raise CourseError(f"--course-dir {where[0]} and --dir {where[1]} differ; give the demo folder once")
    run_demo(where[0] if where else None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description=__doc__)
    p.add_argument("--course-dir", type=Path, default=None,
                   help="course folder (default: nearest folder with nbgrader_config.py)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="build offline stand-in datasets or download real ones")
    g = d.add_mutually_exclusive_group()
    g.add_argument("--offline", action="store_true", help="build offline stand-ins (default)")
    g.add_argument("--real", nargs="+", metavar="NAME", help="download and verify the real dataset(s)")
    d.add_argument("names", nargs="*", help="datasets (default: all)")
    d.add_argument("--force", action="store_true", help="rebuild even if present")
    d.set_defaults(func=_cmd_data)

    r = sub.add_parser("release", help="regenerate release/ASSIGNMENT with nbgrader")
    r.add_argument("assignment", help="an assignment, or 'all' for every one in coursectl/assignments.py")
    r.add_argument("--bundle", action="store_true", help="also write a verified student bundle (zip)")
    r.set_defaults(func=_cmd_release)

    gr = sub.add_parser("grade", help="autograde submissions, write feedback and grade CSVs")
    gr.add_argument("assignment")
    gr.add_argument("--from", dest="from_zip", type=Path, default=None,
                    help="LMS bulk download (Canvas zip) to take submissions from")
    gr.add_argument("--roster", type=Path, default=None, help="CSV mapping LMS ids to student ids")
    gr.add_argument("--workers", type=int, default=None, help="parallel workers (default: one per core)")
    gr.add_argument("--cluster", default=None, metavar="local:N|tcp://HOST:PORT",
                    help="grade on Dask: local:N starts a LocalCluster of N worker processes; "
                         "tcp://HOST:PORT uses a running scheduler (workers need this package and the data)")
    gr.add_argument("--timeout", type=float, default=None, help="wall-clock limit per submission, seconds (default 1800)")
    gr.add_argument("--cell-timeout", type=int, default=None, help="limit per cell, seconds (default: $COURSE_CELL_TIMEOUT or 120)")
    gr.add_argument("--memory-mb", type=int, default=None,
                    help="memory cap per submission in MB: all its processes, tmpfs and shared memory together "
                         "(control group), and each process's address space (default 4096; 0: no cap)")
    gr.add_argument("--max-processes", type=int, default=None,
                    help="processes and threads per submission, all together (default 256; 0: no cap)")
    gr.add_argument("--no-sandbox", action="store_true",
                    help="grade without the bubblewrap sandbox (at your own risk: student code can then "
                         "read and change the course folder, gradebook and other submissions)")
    gr.add_argument("--reseed", action="store_true",
                    help="draw a new course secret (.course_secret, the old one kept as .course_secret.old) "
                         "before grading, e.g. after a leak: check inputs, hence scores, change")
    gr.set_defaults(func=_cmd_grade)

    fb = sub.add_parser("feedback", help="regenerate feedback HTML after hand grading in the formgrader")
    fb.add_argument("assignment")
    fb.add_argument("--student", action="append", default=[], help="only this student (repeatable)")
    fb.set_defaults(func=_cmd_feedback)

    h = sub.add_parser("held", help="list units held for review (a from-scratch rule found dynamic code), "
                                    "or release their points after reading the code")
    h.add_argument("assignment")
    h.add_argument("--release", metavar="STUDENT", default=None,
                   help="give STUDENT the points the checks gave for their held units")
    h.add_argument("--unit", metavar="GRADE_ID", default=None, help="with --release: only this grade cell")
    h.set_defaults(func=_cmd_held)

    a = sub.add_parser("assets", help="regenerate a1's A/B/C training-curve figure and its answer key")
    a.add_argument("--epochs", type=int, default=100)
    a.set_defaults(func=_cmd_assets)

    de = sub.add_parser("demo", help="offline end-to-end demo: data, release, grade three samples")
    de.add_argument("--dir", default=None,
                    help="where to build the demo course (default: --course-dir if given, else demo/ in this course)")
    de.set_defaults(func=_cmd_demo)

    from .service.commands import add_parsers as add_service_parsers

    add_service_parsers(sub)  # serve, tokens, submit, attempts (coursectl/service/)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CourseError as exc:
        print(f"course: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
