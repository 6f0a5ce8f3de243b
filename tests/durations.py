"""Seconds per test file from a pytest ``--durations=0`` output (setup, call and teardown
summed), longest first, as the ``FILE_SECONDS`` table in tests/conftest.py wants them::

    .venv/bin/python -m pytest -n 2 --dist loadfile --durations=0 ... | tee log
    python tests/durations.py log            # the files over 30 s, as Python dict lines
    python tests/durations.py log --all      # every file
"""
from __future__ import annotations

import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([0-9.]+)s\s+(setup|call|teardown)\s+([^:\s]+)::")


def per_file(text: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out[m.group(3)] += float(m.group(1))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main(argv: list[str]) -> None:
    files = per_file(open(argv[0]).read())
    floor = 0 if "--all" in argv else 30
    for path, seconds in files.items():
        if seconds >= floor:
            print(f'    "{path}": {seconds:.0f},')
    print(f"# {len(files)} files, {sum(files.values()):.0f} s in all")


if __name__ == "__main__":
    main(sys.argv[1:])
