"""Extra credit in the autograde chain, stored where nbgrader keeps it (``Grade.extra_credit``).

nbgrader 0.9.6 has no cell metadata for extra credit: its gradebook has an
``extra_credit`` column per grade (the formgrader's "extra credit" field) that adds to
the score and never to the maximum. A course grade cell is extra credit when it is worth
0 points in its nbgrader metadata while its hidden call names extra credit
(``check_maximize_activation(maximize_activation, extra_credit=2)`` in a 0-point cell: up
to 2 points of extra credit; the trusted chain plans it out of those points). Both come from
the gradebook's copy of the cell, never from the submission, as for every trusted score
(coursectl/trusted.py).

The two classes wrap the trusted steps instead of changing them:

- ``ExtraCreditVerdicts`` (in place of ``CollectVerdicts``) lets the verdict of such a
  cell count up to its check's points, then moves it out of the automatic score into
  ``resources[KEY]["extra_credit"]``; the cell's points stay 0.
- ``ExtraCreditSaveAutoGrades`` (in place of ``TrustedSaveAutoGrades``) saves the
  automatic scores as before and writes that verdict to the grade's ``extra_credit``.
"""
from __future__ import annotations

from . import cells
from .trusted import KEY, CollectVerdicts, TrustedSaveAutoGrades

EXTRA = "extra_credit"


def extra_credit_worth(state: dict, cell) -> float:
    """Points of extra credit ``cell`` can earn: its hidden checks' points when the cell
    itself is worth 0, else 0."""
    gid = cells.grade_id(cell)
    if not cells.is_grade(cell) or float(cells.meta(cell).get("points", 0) or 0) != 0:
        return 0.0
    return float(sum(plan.points or 0 for plan, _ in state.get("plans", {}).get(gid, [])))


class ExtraCreditVerdicts(CollectVerdicts):
    """CollectVerdicts, with 0-point cells judged up to their checks' points as extra credit."""

    def preprocess(self, nb, resources):
        state = resources.get(KEY)
        if not state or not state.get("plans"):
            return super().preprocess(nb, resources)
        worth = {}
        for cell in nb.cells:
            w = extra_credit_worth(state, cell)
            if w > 0:
                worth[cells.grade_id(cell)] = (cell, w)
                cells.meta(cell)["points"] = w  # only while the verdict is capped
        try:
            nb, resources = super().preprocess(nb, resources)
        finally:
            for cell, _ in worth.values():
                cells.meta(cell)["points"] = 0
        extra = state.setdefault(EXTRA, {})
        for gid, (_, w) in worth.items():
            extra[gid] = min(max(float(state["scores"].get(gid, 0.0)), 0.0), w)
            state["scores"][gid] = 0.0  # nothing counts towards the maximum
        return nb, resources


class ExtraCreditSaveAutoGrades(TrustedSaveAutoGrades):
    """TrustedSaveAutoGrades, plus the extra credit ExtraCreditVerdicts decided."""

    def preprocess(self, nb, resources):
        self._extra = dict((resources.get(KEY) or {}).get(EXTRA, {}))
        return super().preprocess(nb, resources)

    def _add_score(self, cell, resources):
        super()._add_score(cell, resources)
        gid = cells.grade_id(cell)
        if gid in self._extra:
            grade = self.gradebook.find_grade(gid, self.notebook_id, self.assignment_id, self.student_id)
            grade.extra_credit = self._extra[gid]
            self.gradebook.db.commit()
