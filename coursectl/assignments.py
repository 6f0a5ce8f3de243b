"""The course's assignments, one ``AssignmentSpec`` each: the single list that the
release, the demo, ``course data`` and the tests read.

Adding an assignment (see the README's maintainer section): its source notebook
``source/<name>/<name>.ipynb``, its ``autograder/<name>/`` reference, probes and checks,
its mutants under ``tests/mutants/<mutants>/``, and one entry here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AssignmentSpec:
    name: str                       # folder and notebook name under source/ and release/
    title: str
    datasets: tuple[str, ...]       # data_scripts registry names the notebook loads
    mutants: str                    # tests/mutants/<mutants>/: typical mistakes, one cell each
    # Cells (by grade id) the visible tests need besides the answer and grade cells
    # (tests/assignments/test_visible_checks.py runs only these, to stay fast); None: the
    # assignment is not yet under the visible-check rule.
    visible_setup: tuple[str, ...] | None = None
    visible_base: tuple[str, ...] = ()  # of those, the ones run once and then copied
    # Modules the reference implementations (autograder/<name>/) import on first use, while a
    # job plans and judges; the grading fork server imports them before any job
    # (coursectl/grading/jobs.py), so that no job pays them again. Checked by
    # tests/grading/test_speedups.py.
    grader_imports: tuple[str, ...] = ()


ASSIGNMENTS: dict[str, AssignmentSpec] = {spec.name: spec for spec in (
    AssignmentSpec("a1_rnn_cells", "RNN, LSTM and GRU cells from scratch; speech commands",
                   datasets=("speech_commands",), mutants="a1",
                   visible_setup=("setup", "basic-rnn-cell", "model-checks"), visible_base=("setup",)),
    AssignmentSpec("a2_sentiment", "Sentiment analysis with recurrent networks",
                   datasets=("imdb",), mutants="a2",
                   visible_setup=("setup", "load-data"), visible_base=("setup", "load-data"),
                   grader_imports=("torch._dynamo",)),  # torch's first optimiser loads it (sympy with it)
    AssignmentSpec("a3_char_lm", "Character-level language models",
                   datasets=("tiny_shakespeare",), mutants="a3",
                   visible_setup=("setup", "load-passage"), visible_base=("setup", "load-passage"),
                   grader_imports=("torch._dynamo", "torch.utils.flop_counter")),
    AssignmentSpec("a4_visualizing", "Visualising what CNNs learn",
                   datasets=("cifar10", "mnist"), mutants="a4",
                   visible_setup=("setup",), visible_base=("setup",),
                   grader_imports=("torch.fx.experimental.symbolic_shapes",  # (sympy) first autograd call
                                   "tensorboard.backend.event_processing.event_accumulator")),
)}


def get(name: str) -> AssignmentSpec:
    """The spec of assignment ``name``; a KeyError names the known ones."""
    try:
        return ASSIGNMENTS[name]
    except KeyError:
        raise KeyError(f"no assignment {name!r}; known: {', '.join(ASSIGNMENTS)}") from None


def all_datasets() -> tuple[str, ...]:
    """Every dataset some assignment loads, in assignment order, each once."""
    return tuple(dict.fromkeys(d for spec in ASSIGNMENTS.values() for d in spec.datasets))
