"""The attack suite (attack_suite.py) graded by plain `nbgrader autograde`."""
from attack_suite import *  # noqa: F401,F403  (the suite's fixture and tests)
from attack_suite import NBGRADER

GRADE_BY = NBGRADER
