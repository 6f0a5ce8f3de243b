"""Wall-clock limits (the soft stop inside nbgrader and the hard kill around it) and the
executor seam (another concurrent.futures executor runs the same jobs)."""
from __future__ import annotations

import subprocess
from concurrent.futures import ProcessPoolExecutor

import pytest

from coursectl.grading import grade_assignment, jobs
from fixtures.grading import tiny
from nbcourse import scores, submit

FULL = {"test_square": (2.0, 2.0), "test_cube": (3.0, 3.0)}


def test_wall_clock_limit_stops_cells_and_keeps_earlier_points(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "slow", tiny.ASSIGNMENT, tiny.with_cell("import time\ntime.sleep(60)", after="test_square"),
           name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, timeout=8, progress=False)
    assert scores(course, tiny.ASSIGNMENT, "good") == FULL
    slow = run.result("slow")
    assert slow.status == "graded" and slow.timed_out
    assert "stopped at the wall-clock limit" in slow.reason
    assert scores(course, tiny.ASSIGNMENT, "slow") == {"test_square": (2.0, 2.0), "test_cube": (0.0, 3.0)}
    assert slow.seconds < 8 + 10


def test_hard_kill_when_a_submission_will_not_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "GRACE_S", 0.5)
    course = tiny.make_course(tmp_path)
    deaf = ("import signal, subprocess\nsubprocess.Popen(['sleep', '271.5'])\n"
            "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass")
    submit(course, "deaf", tiny.ASSIGNMENT, tiny.with_cell(deaf), name="tiny.ipynb")
    submit(course, "good", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=2, timeout=4, progress=False)
    deaf_res = run.result("deaf")
    assert deaf_res.status == "failed" and deaf_res.timed_out
    assert deaf_res.reason.startswith("wall-clock limit: still running")
    assert scores(course, tiny.ASSIGNMENT, "good") == FULL
    leftover = subprocess.run(["pgrep", "-f", "sleep 271.5"], capture_output=True, text=True).stdout
    assert leftover.strip() == "", "the killed submission's processes survived"


def test_any_concurrent_futures_executor_can_run_the_jobs(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    submit(course, "b", tiny.ASSIGNMENT, tiny.wrong_answer(), name="tiny.ipynb")
    submit(course, "c", tiny.ASSIGNMENT, tiny.with_cell("import os\nos._exit(1)"), name="tiny.ipynb")
    with ProcessPoolExecutor(max_workers=2) as pool:
        run = grade_assignment(course, tiny.ASSIGNMENT, executor=pool, progress=False)
    assert {r.student: r.score for r in run.results} == {"a": 5.0, "b": 2.0, "c": 5.0}, run.text
    assert "the kernel exited (code 1)" in run.result("c").reason


def test_memory_cap_can_be_switched_off_and_network_isolation_reported(tmp_path):
    course = tiny.make_course(tmp_path)
    submit(course, "a", tiny.ASSIGNMENT, tiny.with_cell("big = bytearray(1536 * 1024 * 1024)\ndel big"),
           name="tiny.ipynb")
    capped = grade_assignment(course, tiny.ASSIGNMENT, memory_mb=1024, progress=False)
    assert "ran out of memory (limit 1024 MB)" in capped.result("a").reason
    free = grade_assignment(course, tiny.ASSIGNMENT, memory_mb=0, isolate_network=False, progress=False)
    assert free.result("a").problems == []
    assert free.network == "not isolated (switched off)"
    assert "network: not isolated (switched off)" in free.text


@pytest.mark.parametrize("workers", [1])
def test_missing_assignment_in_gradebook_is_created_from_source(tmp_path, workers, monkeypatch):
    course = tiny.make_course(tmp_path, generate=False)
    # As `.venv/bin/course grade` runs without an activated environment: nbgrader's new
    # gradebook needs the `alembic` command, which is then not on PATH.
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    submit(course, "a", tiny.ASSIGNMENT, tiny.good(), name="tiny.ipynb")
    run = grade_assignment(course, tiny.ASSIGNMENT, workers=workers, progress=False)
    assert scores(course, tiny.ASSIGNMENT, "a") == FULL
    assert not (course / "release").exists()  # the course's release/ was left alone
    assert run.result("a").problems == []


# --------------------------------------------------------------------------- whole-job limits
#
# cgroups.py makes one control group per kernel (memory with tmpfs and shared memory,
# processes and threads together). The fast tests below check detection and set-up on fake
# cgroup trees, then the real mechanism of this machine; the slow ones grade bombs through
# `course grade` and plain `nbgrader autograde`.

import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402

from coursectl.grading import cgroups, report, sandbox  # noqa: E402


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _proc_cgroup(tmp_path: Path, text: str) -> str:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return str(path)


V1_SELF = "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/grader\n1:cpu,cpuacct:/\n0::/\n"


def _v1_tree(root: Path, *, memsw: bool = True, pids: bool = True) -> Path:
    files = {"memory/cgroup.procs": "", "memory/jobs/grader/cgroup.procs": "",
             "memory/jobs/grader/memory.limit_in_bytes": "9223372036854771712\n",
             "cpu,cpuacct/cgroup.procs": "", "unified/cgroup.controllers": "", "unified/cgroup.procs": ""}
    if memsw:
        files["memory/jobs/grader/memory.memsw.limit_in_bytes"] = "9223372036854771712\n"
    if pids:
        files["pids/cgroup.procs"] = ""
    return _tree(root, files)


def test_detects_cgroup_v2_in_the_graders_own_group(tmp_path):
    root = _tree(tmp_path / "cg", {"cgroup.controllers": "cpu io memory pids\n",
                                  "grading.slice/cgroup.controllers": "memory pids\n",
                                  "grading.slice/memory.swap.max": "max\n"})
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, "0::/grading.slice\n"))
    assert mech.kind == "cgroup v2" and mech.swap
    assert mech.bases == {"memory": str(root / "grading.slice"), "pids": str(root / "grading.slice")}
    assert mech.describe() == "cgroup v2 (memory and pids controllers)"


def test_cgroup_v2_without_delegated_controllers_is_none(tmp_path):
    root = _tree(tmp_path / "cg", {"cgroup.controllers": "cpu io memory pids\n",
                                  "user.slice/cgroup.controllers": "cpu\n"})
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, "0::/user.slice\n"))
    assert mech.kind == "none"
    assert "without the memory and pids controller" in mech.why
    assert mech.describe().endswith("per-process limits only")


def test_detects_cgroup_v1_in_a_hybrid_tree(tmp_path):
    root = _v1_tree(tmp_path / "cg")
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, V1_SELF))
    assert mech.kind == "cgroup v1" and mech.swap and mech.why == ""
    # The memory group is the grader's own (nested), the pids group the hierarchy's root.
    assert mech.bases == {"memory": str(root / "memory" / "jobs" / "grader"), "pids": str(root / "pids")}


def test_cgroup_v1_without_pids_keeps_memory_and_says_what_is_missing(tmp_path):
    root = _v1_tree(tmp_path / "cg", memsw=False, pids=False)
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, V1_SELF))
    assert mech.kind == "cgroup v1" and not mech.swap
    assert mech.controllers == ["memory"]
    assert mech.describe() == "cgroup v1 (memory controller); no pids hierarchy"


def test_no_cgroup_file_system_is_none(tmp_path):
    (tmp_path / "cg").mkdir()
    mech = cgroups.detect(str(tmp_path / "cg"), _proc_cgroup(tmp_path, "0::/\n"))
    assert mech.kind == "none" and not mech.bases


def test_job_group_v1_gets_memory_with_swap_and_process_caps(tmp_path):
    root = _v1_tree(tmp_path / "cg")
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, V1_SELF))
    job = cgroups.create_job(300, 40, mechanism=mech, owner=4242)
    mem, pids = Path(job.dirs["memory"]), Path(job.dirs["pids"])
    assert mem.parent == root / "memory" / "jobs" / "grader" and mem.name.startswith("course-job-4242-")
    assert (mem / "memory.limit_in_bytes").read_text() == str(300 * 2**20)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(300 * 2**20)
    assert (pids / "pids.max").read_text() == "40"
    assert job.describe() == "cgroup v1: memory 300 MB for the whole job (swap off), 40 processes and threads"
    assert cgroups.JobGroup.from_dict(job.to_dict()) == job  # travels to the launcher as JSON


def test_job_group_v2_enables_controllers_and_turns_swap_off(tmp_path):
    root = _tree(tmp_path / "cg", {"cgroup.controllers": "memory pids\n", "g/cgroup.controllers": "memory pids\n",
                                  "g/cgroup.subtree_control": "", "g/memory.swap.max": "max\n"})
    mech = cgroups.detect(str(root), _proc_cgroup(tmp_path, "0::/g\n"))
    # A real kernel makes these files when the group is made; a fake tree needs them first.
    real_mkdir = os.mkdir

    def mkdir(path, *args):
        real_mkdir(path, *args)
        Path(path, "memory.swap.max").write_text("max\n")

    job = None
    try:
        os.mkdir = mkdir
        job = cgroups.create_job(100, 10, mechanism=mech)
    finally:
        os.mkdir = real_mkdir
    folder = Path(job.dirs["memory"])
    assert job.dirs["pids"] == str(folder) and job.procs_files() == [str(folder / "cgroup.procs")]
    assert (root / "g" / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (folder / "memory.max").read_text() == str(100 * 2**20)
    assert (folder / "memory.swap.max").read_text() == "0" and job.swap_capped
    assert (folder / "pids.max").read_text() == "10"


def test_machine_without_groups_refuses_a_job_group(tmp_path):
    with pytest.raises(cgroups.CgroupError, match="per-process limits only"):
        cgroups.create_job(100, 10, mechanism=cgroups.Mechanism("none", why="no cgroup file system"))


def test_launcher_without_a_group_says_so():
    line = sandbox.apply_job_limits({"cgroup": None, "cgroup_why": "no control groups (test)"})
    assert line == "per-process limits only (no control groups (test))"


def test_report_states_the_whole_job_mechanism_and_caps():
    meta = {"network": "isolated", "protection": {"sandbox": "bubblewrap", "memory_cap_mb": 1024,
                                                   "job_limits": "cgroup v1 (memory and pids controllers)",
                                                   "max_processes": 256}, "limits": {"timeout_s": 60}}
    assert ("whole-job limits: cgroup v1 (memory and pids controllers); per submission: memory 1024 MB "
            "and 256 processes and threads") in report.protection_lines(meta)


def _real_mechanism() -> cgroups.Mechanism:
    mech = cgroups.detect()
    if mech.kind == "none":
        pytest.skip(f"no control groups for the grader here: {mech.why}")
    return mech


def test_real_group_caps_processes_and_memory_and_is_removed(tmp_path):
    mech = _real_mechanism()
    job = cgroups.create_job(96, 12, mechanism=mech)
    try:
        # A child joins the group (as the launcher does), then forks until refused and
        # fills shared memory (a memfd: no address space) past the cap.
        code = ("import os, sys, time\n"
                "for f in sys.argv[1:]:\n    open(f, 'w').write(str(os.getpid()))\n"
                "kids = 0\n"
                "try:\n    while kids < 100:\n        if os.fork() == 0:\n            time.sleep(60); os._exit(0)\n"
                "        kids += 1\nexcept OSError:\n    pass\n"
                "print('forks', kids, flush=True)\n"
                "fd = os.memfd_create('hog'); chunk = b'x' * 2**20\n"
                "for i in range(400):\n    os.write(fd, chunk)\n"
                "print('wrote 400 MB', flush=True)\n")
        out = tmp_path / "out.txt"
        with open(out, "w") as fh:  # a file, not a pipe: the sleeping children keep theirs open
            code_rc = subprocess.run([sys.executable, "-c", code, *job.procs_files()], stdout=fh,
                                     stderr=subprocess.STDOUT, timeout=60).returncode
        text = out.read_text()
        forks = int(text.split()[1]) if text.startswith("forks") else None
        assert forks is not None and forks < 12, text
        assert "wrote 400 MB" not in text and code_rc == -9, text
        assert cgroups.events(job)["oom_kill"] >= 1 and cgroups.events(job)["pids_max"] >= 1
        assert cgroups.members(job)  # the sleeping children are still in the group
    finally:
        assert cgroups.remove_job(job)
    assert not any(os.path.exists(f) for f in job.folders)


def test_groups_of_dead_graders_are_swept(tmp_path):
    mech = _real_mechanism()
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = cgroups.create_job(64, 8, mechanism=mech)
    stale = cgroups.create_job(64, 8, mechanism=mech, owner=dead.pid)
    try:
        assert set(cgroups.sweep(mech)) == set(stale.folders)
        assert all(os.path.isdir(f) for f in mine.folders)
    finally:
        cgroups.remove_job(mine)
        cgroups.remove_job(stale)
