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

    # Test processes running side by side (pytest-xdist) build in turn, not over each other.
    root = data_scripts.data_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".tests-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in all_datasets():
            data_scripts.build_offline(name)
            warm_caches(name)
