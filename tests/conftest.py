"""Shared test set-up: the helper modules in tests/ (nbcourse, mutants, fixtures) are
importable from every test folder."""
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
