"""Errors `course` prints as one message, without a traceback."""


class CourseError(RuntimeError):
    """A problem the instructor can fix; printed without a traceback."""
