"""The attack suite (attack_suite.py) graded by `course grade --workers 2`."""
from attack_suite import *  # noqa: F401,F403  (the suite's fixture and tests)
from attack_suite import COURSE_GRADE

GRADE_BY = COURSE_GRADE
