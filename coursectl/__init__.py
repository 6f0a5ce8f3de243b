"""Instructor tooling behind the `course` command: data, release, grading, demo."""
