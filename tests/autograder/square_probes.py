"""Probe module of the harness tests' toy unit (sent into the kernel as source)."""


def call_square(student, x):
    return student["fn"](x)


def call_both(student, xs):
    return [student["fn"](x) for x in xs]
