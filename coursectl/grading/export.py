"""Grade exports: nbgrader's own CSV and a file Canvas' gradebook import accepts."""
from __future__ import annotations

import csv
from pathlib import Path

from .intake import Roster


def nbgrader_csv(gb, path: Path, *, assignment: str | None = None) -> Path:
    """The CSV `nbgrader export` writes (same plugin, same gradebook); with ``assignment``
    only that assignment's rows (`nbgrader export --assignment`), since one gradebook holds
    every assignment and a per-assignment report must not list the others at 0."""
    from nbgrader.plugins import CsvExportPlugin

    CsvExportPlugin(to=str(path), assignment=[assignment] if assignment else []).export(gb)
    return path


def canvas_column(assignment: str, roster: Roster | None) -> str:
    """Reuse the roster's column for this assignment when the roster is a Canvas export
    (``a1_rnn_cells (12345)``): Canvas then updates that column instead of adding one."""
    for header in (roster.columns if roster else []):
        if header.strip().lower().startswith(assignment.lower()):
            return header
    return assignment


def canvas_csv(path: Path, assignment: str, rows: list[tuple[str, float, float]], roster: Roster | None) -> Path:
    """Rows are (student id, score, max score). Columns follow Canvas' gradebook export."""
    people = roster.by_student() if roster else {}
    column = canvas_column(assignment, roster)
    max_score = max((m for _, _, m in rows), default=0.0)
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column])
        out.writerow(["Points Possible", "", "", "", "", f"{max_score:g}"])
        for student, score, _ in sorted(rows):
            p = people.get(student)
            if p is None:
                out.writerow([student, "", student, "", "", f"{score:g}"])
            else:
                out.writerow([p.name or student, p.lms_id, p.sis_user_id or student, p.sis_login_id, p.section,
                              f"{score:g}"])
    return path
