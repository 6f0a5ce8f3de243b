"""Decide, in the grader, whether a1 code used torch's own recurrent layers or kernels.

A1 asks for cells written from ``nn.Linear`` and tensor operations. Two views meet here:

* before the notebook runs, ``static_guard`` reads the submitted source (trusted grading);
* while probes run, ``a1_rnn_cells.probes`` notes what the graded objects are made of: the torch
  class behind every submodule and attribute, the torch class the graded class derives
  from, and what its methods' dotted names resolve to, each as ``[kind, where, name,
  "module.name"]`` (see ``a1_rnn_cells.probes.note_class``/``note_object``).

``forbidden(notes)`` turns the second view into a message, or None when nothing is
forbidden. The notes come from the student's kernel, so they are read as untrusted data:
they can only cost points (a forged "all clear" still has to survive ``static_guard``).
"""
from __future__ import annotations

from .static_guard import KERNELS, RECURRENT_CLASSES

RNN_MODULE = "torch.nn.modules.rnn."
ADVICE = "(build the recurrence from nn.Linear and tensor operations)"


def forbidden_name(target: str) -> str | None:
    """``torch.nn.LSTM`` / ``torch.lstm_cell`` for a forbidden torch class or kernel named
    "module.name", else None."""
    if not isinstance(target, str):
        return None
    parts = target.split(".")
    if target.startswith(RNN_MODULE) and parts[-1] in RECURRENT_CLASSES:
        return f"torch.nn.{parts[-1]}"
    if parts[0] == "torch" and parts[-1] in KERNELS:
        return f"torch.{parts[-1]}"
    return None


def forbidden(notes) -> str | None:
    """The message for the first forbidden layer among the probe's ``notes``, or None."""
    if not isinstance(notes, list):
        raise ValueError("guard notes must be a list")
    for note in notes:
        if not (isinstance(note, list) and len(note) == 4 and all(isinstance(v, str) for v in note)):
            raise ValueError("malformed guard note")
        kind, where, name, target = note
        found = forbidden_name(target)
        if found is None:
            continue
        if kind == "derives":
            what = f"{where} derives from {found}"
        elif kind == "uses":
            what = f"{where} uses {name}" + ("" if name == found else f" ({found})")
        else:
            what = f"attribute {where} is a {found}"
        return f"{what}, which this assignment does not allow {ADVICE}"
    return None
