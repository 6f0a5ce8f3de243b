"""A toy unit for the trusted-chain tests: ``check_square(square)`` (the cell's metadata gives the points)."""
import square_probes  # beside this file
from autograder.harness import Probe, Unit, require

unit = Unit("square", grade_id="test_square", objects=("fn",), probes=square_probes)


@unit.check("small positive numbers", weight=1)
def _positive(rng):
    x = int(rng.integers(2, 50))
    return Probe("call_square", x=x), lambda out: require(out == x * x, f"square({x}) gave {out!r}")


@unit.check("negative numbers", weight=1)
def _negative(rng):
    xs = [int(v) for v in -rng.integers(2, 50, size=3)]

    def judge(outs):
        require(outs[0] == [x * x for x in xs], f"square{tuple(xs)} gave {outs[0]!r}")
    return [Probe("call_both", xs=xs)], judge


@unit.check("zero", weight=1)
def _zero(rng):
    return Probe("call_square", x=0), lambda out: require(out == 0, f"square(0) gave {out!r}")


check_square = unit.entry_point()
