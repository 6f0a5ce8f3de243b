"""Trusted verdicts: nbgrader preprocessors that grade outside the student's kernel.

In the autograde chain, around nbgrader's Execute:

1. ``InjectProbes`` (before Execute) reads each grade cell's hidden one-liner
   (``check_lstm_cell(LSTMCell)``), plans that unit in this process for the points of the
   cell's metadata (the only place they are written; the unit splits them over its checks
   by weight) with inputs drawn from the course's secret (``coursectl.secret``), inserts a *probe cell* just before
   the grade cell (it calls the student's objects on those inputs and displays the results as data) and leaves
   only the visible part in the grade cell, so a failing visible assert cannot stop the
   hidden checks.
2. Execute runs the notebook in the (sandboxed) kernel.
3. ``CollectVerdicts`` (after Execute) takes each probe cell's data, judges it here
   against the reference, removes the probe cells, puts the grade cell's source back and
   appends the verdict to its output.
4. ``TrustedSaveAutoGrades`` (in place of SaveAutoGrades) scores a unit's grade cell from
   that verdict alone, clamped to the cell's points; what the kernel printed, displayed
   or raised never adds points. A grade cell whose hidden code is not a unit call keeps
   nbgrader's rule (full points unless it raised) but a printed number is ignored.

A unit may declare a policy (``Unit(policy=...)``, e.g. ``autograder.from_scratch``): asked
about the student's cells in step 1, it fails the unit (no probe cell), or holds it for
review (the checks run, the score the checks gave is kept in the grade cell's metadata,
the unit gets 0 automatic points and needs manual grading until ``course held`` releases
it); its kernel-side guard is set up by a first cell inserted before any student code.

All state passes between the steps in nbconvert's ``resources``, which the kernel never
sees.
"""
from __future__ import annotations

import base64
import functools
import json
import os
import secrets

from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades
from nbgrader.utils import determine_grade
from traitlets import List, Unicode

from . import cells

KEY = "seqcourse_trusted"
PROBE_TAG = "seqcourse_probe"
# What the trusted steps found that an instructor should read (the grading worker puts
# these in the report; one job per process, so the list belongs to one submission).
NOTES: list[str] = []


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _module_source(module) -> str:
    from pathlib import Path

    return Path(module.__file__).read_text(encoding="utf-8")


def probe_cell_source(plan_kernel: dict, probes_source: str) -> str:
    from autograder import kernel_side, wire

    return kernel_side.BOOT.format(wire=_b64(_module_source(wire)), side=_b64(_module_source(kernel_side)),
                                   plan=_b64(json.dumps(plan_kernel)), probes=_b64(probes_source))


def _bind(unit, call: cells.UnitCall):
    """(bindings, options, extra credit) for ``call`` of ``unit``, or None if they do not fit
    (a call that names ``points`` does not: points live in the cell's metadata)."""
    params = list(unit.objects) + list(unit.options)
    if len(call.names) > len(params):
        return None
    bindings, options, lit = {}, {}, iter(call.literals)
    for param, name in zip(params, call.names):
        if param in unit.objects:
            if name is None:
                return None
            bindings[param] = name
        else:
            options[param] = name if name is not None else next(lit)
            if name is not None:
                return None  # options are literals
    for key, name in call.keyword_names.items():
        if key not in unit.objects:
            return None
        bindings[key] = name
    extra = None
    for key, value in call.keywords.items():
        if key == "extra_credit" and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            extra = float(value)
        elif key in unit.options:
            options[key] = value
        else:
            return None
    if set(bindings) != set(unit.objects):
        return None
    return bindings, options, extra


def _on_one_torch_thread(method):
    """Run ``method`` with torch on one thread. The references and judges work on tiny
    tensors: a second thread only waits for a core that kernels are using (with two
    workers on two cores, a4's planning took 20 times longer than on a quiet core). One
    thread on every path (plain nbgrader, `course grade`, the in-process grading of
    tests/autograder/reproducible.py), so that expected values are computed alike. (A
    unit may ask for its own count, ``Unit(threads=...)``, inside this.)"""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        from autograder.harness import torch_threads

        with torch_threads(1):
            return method(*args, **kwargs)
    return wrapper


class InjectProbes(NbGraderPreprocessor):
    """Plan every unit and insert its probe cell; see the module docstring."""

    secret = Unicode("", help="The course's secret for drawing check inputs, in hex (`course grade` sets it "
                              "in its jobs); empty: read <course>/.course_secret, made on first "
                              "grading (coursectl/secret.py)").tag(config=True)
    unit_packages = List(Unicode(), ["autograder"],
                         help="Packages whose units a hidden test may call").tag(config=True)

    @_on_one_torch_thread
    def preprocess(self, nb, resources):
        from autograder import harness, kernel_side

        secret = self._course_secret()
        assignment = str((resources.get("nbgrader") or {}).get("assignment") or "")
        state = resources.setdefault(KEY, {"plans": {}, "sources": {}, "scores": {}, "reports": {}})
        # Probe cells are known by a token only this process holds, never by a tag a
        # notebook could carry: a student cell that imitates one is kept and flagged.
        state["token"] = secrets.token_hex(16)
        NOTES.clear()  # plain nbgrader grades several notebooks in one process
        for cell in nb.cells:  # only this chain writes held points or checks (a submission cannot bring its own)
            cell.get("metadata", {}).pop(HELD_KEY, None)
            cell.get("metadata", {}).pop(CHECKS_KEY, None)
        # The student's code for the units' policies: answer cells and cells they added
        # (locked cells are the instructor's, restored by nbgrader before this step).
        student = tuple((i + 1, str(c.get("id") or ""), cells.source_text(c)) for i, c in enumerate(nb.cells)
                        if c.get("cell_type") == "code" and not cells.is_autograded_test(c)
                        and not cells.is_locked(c))

        def forbidden(unit, names):  # the unit's own rule (e.g. from_scratch.FromScratch)
            return unit.policy.review(student, names, isolated=tuple(unit.stand_ins))
        out = []
        for cell in nb.cells:
            gid = cells.grade_id(cell)
            source = cells.source_text(cell)
            planned = None
            if cells.is_autograded_test(cell) and gid and cells.BEGIN_HIDDEN in source:
                planned = self._plan(harness, gid, cells.hidden_region(source), secret, forbidden,
                                     assignment=assignment, points=float(cells.meta(cell).get("points", 0) or 0))
            if planned is None:
                out.append(cell)
                continue
            state["plans"][gid] = planned
            state["sources"][gid] = source
            for k, (plan, blocked) in enumerate(planned):
                if blocked is None or not blocked.fails:  # a held unit's checks still run
                    probe = new_code_cell(probe_cell_source(plan.kernel, plan.unit.probe_source()))
                    probe.metadata[PROBE_TAG] = {"grade_id": gid, "index": k, "token": state["token"]}
                    out.append(probe)
            cell.source = cells.without_hidden(source)
            out.append(cell)
        if any(plan.kernel.get("guard") for planned in state["plans"].values() for plan, _ in planned):
            # The op guard is set up before any student code runs (kernel_side.GUARD_BOOT);
            # tagged like a probe cell, so CollectVerdicts removes it.
            guard = new_code_cell(kernel_side.GUARD_BOOT.format(side=_b64(_module_source(kernel_side))))
            guard.metadata[PROBE_TAG] = {"grade_id": "", "index": -1, "token": state["token"]}
            out.insert(0, guard)
        nb.cells = out
        return nb, resources

    def _course_secret(self) -> bytes:
        """The secret every check's inputs derive from: the one `course grade` passed in, else
        the course's own (nbgrader runs in the course root; its converter knows that root)."""
        from . import secret as course_secret

        if self.secret:
            return course_secret.parse(self.secret, "InjectProbes.secret")
        coursedir = getattr(getattr(self.parent, "parent", None), "coursedir", None)
        root = getattr(coursedir, "root", None) or os.getcwd()
        return course_secret.load_or_create(root).value

    def _plan(self, harness, gid, hidden, secret, forbidden, assignment="", points=0.0):
        calls = cells.unit_calls(hidden)
        if not calls:
            return None
        units, bound = [], []
        for call in calls:
            unit = harness.find_unit(call.module, call.function, tuple(self.unit_packages))
            one = _bind(unit, call) if unit is not None else None
            if one is None:
                return None
            units.append(unit)
            bound.append(one)
        # The cell's points (its metadata: the one place they are written), split over
        # several units of one cell by their checks' weights; a 0-point cell whose call
        # names extra_credit is judged out of that (coursectl.extra_credit).
        total = sum(u.total_weight for u in units) or 1.0
        planned = []
        for k, (unit, (bindings, options, extra)) in enumerate(zip(units, bound)):
            share = points * unit.total_weight / total
            if points == 0 and extra is not None:
                share = extra
            # Per assignment, grade cell and check: the same inputs in every grading run.
            draws = harness.Draws.for_unit(secret, assignment, gid if k == 0 else f"{gid}#{k}")
            plan = unit.plan(draws, bindings=bindings, options=options, points=share, grade_id=gid)
            blocked = None
            if unit.policy is not None:  # a from_scratch.Verdict: fails, or held for review
                blocked = forbidden(unit, list(bindings.values()))
            planned.append((plan, blocked))
        return planned


def _payload(cell, nonce: str):
    """The first probe output of ``cell`` carrying ``nonce``, or (None, why)."""
    from autograder import wire

    why = "the checks did not run (the probe cell produced no result)"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            why = f"the checks did not run ({out.get('ename')}: {str(out.get('evalue'))[:200]})"
        data = out.get("data", {}) if out.get("output_type") in ("display_data", "execute_result") else {}
        body = data.get(wire.MIME)
        if body is None:
            continue
        try:  # bounded before parsing: a deep or huge payload is refused, never crashes the judge
            body = wire.parse_bounded(body)
        except wire.WireError as exc:
            why = f"the checks' results were refused: {exc}"
            continue
        if isinstance(body, dict) and body.get("nonce") == nonce:
            return body, ""
    return None, why


class CollectVerdicts(NbGraderPreprocessor):
    """Judge the probe cells' data, then put the notebook back as the student wrote it."""

    @_on_one_torch_thread
    def preprocess(self, nb, resources):
        state = resources.get(KEY)
        if not state or not state["plans"]:
            return nb, resources
        probes = {}
        kept = []
        for cell in nb.cells:
            tag = cell.get("metadata", {}).get(PROBE_TAG)
            if _is_own_probe(tag, state.get("token")):
                probes[(tag["grade_id"], tag["index"])] = cell
            else:
                if tag is not None:
                    _flag_impostor(cell, len(kept))
                kept.append(cell)
        nb.cells = kept
        for cell in nb.cells:
            gid = cells.grade_id(cell)
            if gid not in state["plans"]:
                continue
            results = []
            held = []
            for k, (plan, blocked) in enumerate(state["plans"][gid]):
                if blocked is not None and blocked.fails:
                    results.append(_blocked(plan, blocked))
                    _note(state, f"{blocked.name}: {blocked.message}", gid, 0.0, 0.0)
                    continue
                if blocked is not None:
                    held.append(blocked)
                probe = probes.get((gid, k))
                payload, why = _payload(probe, plan.kernel["nonce"]) if probe is not None else (None, "")
                results.append(plan.unit.judge(plan, payload, missing=why))
            score = sum(r.score for r in results)
            points = float(cells.meta(cell).get("points", 0) or 0)
            state["scores"][gid] = min(max(score, 0.0), points)
            report = "\n".join(r.report() for r in results)
            if held:
                report = _hold(cell, gid, state, held, points, report)
            state["reports"][gid] = report
            # Each check's verdict as data, for the instant-feedback service (coursectl/service/):
            # the names and messages the report prints, passed checks included.
            cell.setdefault("metadata", {})[CHECKS_KEY] = {
                "held": bool(held),
                "checks": [{"name": str(c.name), "passed": bool(c.passed), "message": str(c.message)}
                           for r in results for c in r.checks]}
            cell.source = state["sources"][gid]
            cell.setdefault("outputs", []).append(
                new_output("stream", name="stdout", text=f"[grader] {report}\n"))
        _policy_notes(state)
        return nb, resources


def _is_own_probe(tag, token) -> bool:
    return (isinstance(tag, dict) and isinstance(token, str) and isinstance(tag.get("token"), str)
            and secrets.compare_digest(tag["token"], token))


IMPOSTOR_NOTE = ("[grader] this cell carries the grader's probe-cell tag ({tag}); the grader does not "
                 "read it as its own, and the instructor sees it flagged\n")


def _flag_impostor(cell, index: int) -> None:
    """A cell of the submission that carries the probe tag: kept, shown and flagged."""
    NOTES.append(f"cell {index + 1} carries the grader's probe-cell tag: kept, not read as a probe")
    if cell.get("cell_type") == "code":
        cell.setdefault("outputs", []).append(
            new_output("stream", name="stdout", text=IMPOSTOR_NOTE.format(tag=PROBE_TAG)))


def _note(state, text: str, gid: str, score: float, points: float) -> None:
    """Gather a policy's verdict for the report: one line per verdict, listing its grade
    cells (the same finding usually holds or fails every unit of the rule)."""
    entry = state.setdefault("policy_notes", {}).setdefault(text, [[], 0.0, 0.0])
    entry[0].append(gid)
    entry[1] += score
    entry[2] += points


def _policy_notes(state) -> None:
    for text, (gids, score, points) in (state.get("policy_notes") or {}).items():
        withheld = f" ({score:g} of {points:g} points withheld)" if text.startswith("HELD") else ""
        NOTES.append(f"{', '.join(gids)}: {text}{withheld}")


def _blocked(plan, verdict):
    from autograder.harness import UnitResult

    return UnitResult.failed(plan.unit.title(plan.kernel["options"]), plan.grade_id, plan.points,
                             verdict.name, verdict.message)


CHECKS_KEY = "seqcourse_checks"  # grade-cell metadata of the autograded notebook: each check's verdict
HELD_KEY = "seqcourse_held"  # grade-cell metadata of the autograded notebook: what `course held` releases


def _hold(cell, gid, state, held, points, report) -> str:
    """Withhold a unit's points until the instructor has read what its policy found: the
    score stays 0 and needs manual grading; the score the checks gave and why are kept in
    the grade cell's metadata (written here, after the kernel is gone), for `course held`."""
    score = state["scores"][gid]
    findings = [f.text() for verdict in held for f in verdict.findings]
    cell.setdefault("metadata", {})[HELD_KEY] = {"score": score, "points": points,
                                                "findings": list(dict.fromkeys(findings))}
    state.setdefault("held", {})[gid] = score
    state["scores"][gid] = 0.0
    _note(state, "HELD FOR REVIEW: " + "; ".join(list(dict.fromkeys(findings))[:3]), gid, score, points)
    return (f"HELD FOR REVIEW: 0 of {points:g} points until the instructor has read it "
            f"(the checks gave {score:g}). {held[0].message}\n{report}")


class TrustedSaveAutoGrades(SaveAutoGrades):
    """SaveAutoGrades with scores from CollectVerdicts; see the module docstring."""

    def preprocess(self, nb, resources):
        self._trusted = (resources.get(KEY) or {}).get("scores", {})
        self._held = (resources.get(KEY) or {}).get("held", {})
        return super().preprocess(nb, resources)

    def _add_score(self, cell, resources):
        gid = cells.grade_id(cell)
        grade = self.gradebook.find_grade(gid, self.notebook_id, self.assignment_id, self.student_id)
        points = float(cells.meta(cell).get("points", 0) or 0)
        if gid in self._held:  # held for review: no automatic points, marked for hand grading
            grade.auto_score = 0.0
            grade.needs_manual_grade = grade.manual_score is None
            self.gradebook.db.commit()
            return
        if gid in self._trusted:
            auto = self._trusted[gid]
        elif cells.is_solution(cell) or cell.cell_type != "code":
            auto, _ = determine_grade(cell, self.log)  # written answers: nbgrader's rule, outputs unread
        else:  # not a unit: nbgrader's rule without the printed partial credit
            failed = any(o.get("output_type") == "error"
                         or (o.get("output_type") == "stream" and o.get("name") == "stderr")
                         for o in cell.get("outputs", []))
            auto = 0.0 if failed else points
        grade.auto_score = None if auto is None else min(max(float(auto), 0.0), points)
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
        self.gradebook.db.commit()
