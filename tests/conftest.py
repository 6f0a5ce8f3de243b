"""Shared test set-up: the helper modules in tests/ (nbcourse, mutants, fixtures) are
importable from every test folder."""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


import pytest  # noqa: E402



@pytest.fixture(scope="session", autouse=True)
def offline_data(request):
    """Build the offline datasets and their caches once, before any slow test runs a
    notebook: graded kernels see the data folder read-only, so a notebook could neither
    build a missing stand-in nor save a cache there (a fresh machine would recompute a1's
    MFCC features for every graded submission)."""
    if not any(item.get_closest_marker("slow") for item in request.session.items):
        return
    import fcntl

    import data_scripts
    from coursectl.assignments import all_datasets
    from coursekit.prepare import warm_caches

    # Test processes running side by side (pytest-xdist) never build one dataset over each
    # other (a lock per dataset), but do build different ones at once: each worker starts at
    # another place in the list, so on a fresh machine both cores build from the start.
    import os

    root = data_scripts.data_dir()
    root.mkdir(parents=True, exist_ok=True)
    names = list(all_datasets())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    shift = int(worker[2:]) * len(names) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) \
        if worker[2:].isdigit() else 0
    for name in names[shift:] + names[:shift]:
        with open(root / f".tests-build-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data_scripts.build_offline(name)
            warm_caches(name)


# --- scheduling: longest test files first ------------------------------------------------
# `make test` spreads whole files over two pytest-xdist workers (--dist loadfile, so a
# file's module fixtures grade once) in collection order (--no-loadscope-reorder; xdist's
# default would start the files with the MOST TESTS first, which puts the long one-fixture
# files last, where one of them alone can keep a worker busy minutes after the other is
# done). Starting the longest files first keeps the two workers' ends close together
# (LPT). The seconds are one file's wall time in a `--durations=0` run on the 2-core
# machine while other work ran; only their order matters, and a file missing here is
# merely scheduled as a slow (SLOW_DEFAULT) or fast (0) file. Refresh with
# `python tests/durations.py LOG` on a `--durations=0` output, or from the wall column of
# the CPU table that ends every run (these: the clean-clone CI run of 2026-12-08).
FILE_SECONDS = {
    "tests/autograder/test_reproducible.py": 300,
    "tests/security/test_attacks_nbgrader.py": 261,
    "tests/test_bundle_end_to_end.py": 220,
    "tests/grading/test_regrade.py": 208,
    "tests/service/test_attacks_service.py": 199,
    "tests/security/test_attacks_course_grade.py": 143,
    "tests/grading/test_limits.py": 138,
    "tests/assignments/a1/test_notebook.py": 109,
    "tests/test_browser.py": 98,
    "tests/assignments/a4/test_notebook.py": 97,
    "tests/service/test_submit_cli.py": 70,
    "tests/assignments/a2/test_notebook.py": 69,
    "tests/service/test_lab_browser.py": 68,
    "tests/grading/test_cluster.py": 68,
    "tests/assignments/a3/test_notebook.py": 60,
    "tests/test_prepare.py": 55,
    "tests/test_student_exchange.py": 44,
    "tests/test_browser_safety.py": 40,
}
SLOW_DEFAULT = 30


def pytest_collection_modifyitems(session, config, items):
    from collections import defaultdict

    slow = defaultdict(bool)
    for item in items:
        slow[item.path] |= item.get_closest_marker("slow") is not None

    def seconds(item) -> float:
        rel = item.path.relative_to(config.rootpath).as_posix()
        return FILE_SECONDS.get(rel, SLOW_DEFAULT if slow[item.path] else 0)

    # A stable sort: each file's tests stay together and in their order.
    items.sort(key=lambda item: -seconds(item))


# --- CPU seconds per test file, at the end of the run -------------------------------------
# --durations lists wall time, which on a shared or busy machine says little about what a
# file costs. Each phase's CPU time (this process and the subprocesses it has waited for:
# nbgrader, course grade, kernels) goes into the report; the end of the run lists the files
# by CPU next to their wall time (with xdist the workers send it in the reports). A lower
# bound: processes not yet reaped when a phase ends (servers, a multiprocessing forkserver's
# pool) count only once reaped by this process, and their own children never do.
def _cpu_seconds() -> float:
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed_phase(item):
    start = _cpu_seconds()
    yield
    item.stash.setdefault(_CPU_KEY, {})[_PHASE[0]] = _cpu_seconds() - start


_CPU_KEY = pytest.StashKey[dict]()
_PHASE = ["setup"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _PHASE[0] = "setup"
    yield from _timed_phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _PHASE[0] = "call"
    yield from _timed_phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    _PHASE[0] = "teardown"
    yield from _timed_phase(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    cpu = item.stash.get(_CPU_KEY, {}).get(call.when)
    if cpu is not None:
        outcome.get_result().user_properties.append(("cpu_s", round(cpu, 3)))


_PER_FILE: dict[str, list[float]] = {}


def pytest_runtest_logreport(report):
    cpu = dict(report.user_properties).get("cpu_s")
    if cpu is None:
        return
    entry = _PER_FILE.setdefault(report.nodeid.split("::", 1)[0], [0.0, 0.0])
    entry[0] += cpu
    entry[1] += report.duration


def pytest_terminal_summary(terminalreporter, config):
    if not _PER_FILE or config.option.durations is None:
        return
    rows = sorted(_PER_FILE.items(), key=lambda kv: -kv[1][0])
    shown = rows if config.option.durations == 0 else rows[:max(config.option.durations, 10)]
    terminalreporter.write_sep("=", "CPU seconds per test file (its process and waited-for subprocesses)")
    for path, (cpu, wall) in shown:
        terminalreporter.write_line(f"{cpu:8.1f} cpu {wall:8.1f} wall  {path}")
    cpu_all, wall_all = (sum(v[i] for v in _PER_FILE.values()) for i in (0, 1))
    terminalreporter.write_line(f"{cpu_all:8.1f} cpu {wall_all:8.1f} wall  all {len(_PER_FILE)} files")
