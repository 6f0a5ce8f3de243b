"""nbgrader configuration for the course. Paths are relative to the folder nbgrader
runs in (the course root); `course` always runs nbgrader there."""
import os
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    Execute,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor

from coursectl.preprocessors import HideHiddenTests, SoftenWarnings

c = get_config()  # noqa: F821 (provided by traitlets)

c.CourseDirectory.course_id = "seqcourse"
# Where `nbgrader release_assignment`/`collect` exchange files; nbgrader's default
# (/srv/nbgrader/exchange) does not exist on a fresh machine.
c.Exchange.root = os.environ.get("COURSE_EXCHANGE", str(Path.cwd() / "exchange"))

# Every cell gets a time limit; training cells shrink while NBGRADER_EXECUTION is set.
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Library warnings (torch, librosa) printed on stderr must not zero a correct cell.
c.Autograde.autograde_preprocessors = [
    Execute,
    SoftenWarnings,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]

# Feedback must never show hidden test code: neither cell source nor traceback context.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
