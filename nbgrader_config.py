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
)
from nbconvert.preprocessors import ClearMetadataPreprocessor

from coursectl.preprocessors import HideHiddenTests, SoftenWarnings
from coursectl.nbg import ensure_exchange, html_template_dirs
from coursectl.sanitize import SanitizeNotebook, SanitizeStoredOutputs
from coursectl.trusted import InjectProbes
# the trusted steps, with extra credit (0-point cells whose hidden check awards points)
from coursectl.extra_credit import ExtraCreditSaveAutoGrades, ExtraCreditVerdicts

c = get_config()  # noqa: F821 (provided by traitlets)

# nbgrader's own reads of a submission (its notebooks, the copy into autograded/,
# timestamp.txt) follow no symbolic or hard link and read no device or FIFO
# (coursectl/grading/nblinks.py): a link to the solution is named, not run.
from coursectl.grading import nblinks  # noqa: E402

nblinks.install()
# A new gradebook gets nbgrader's schema version read in this process, not from the
# `alembic heads` command (a second interpreter, about 1 s of CPU per new gradebook).
from coursectl.grading.gradebook import read_head_in_process  # noqa: E402

read_head_in_process()
# nbgrader checks each cell's metadata against a JSON schema and, through jsonschema.validate,
# the schema itself again for each cell: checked once per process instead (cell_schema.py).
from coursectl.grading import cell_schema  # noqa: E402

cell_schema.install()

c.CourseDirectory.course_id = "seqcourse"
# Where `nbgrader release_assignment`/`collect` exchange files; nbgrader's default
# (/srv/nbgrader/exchange) does not exist on a fresh machine. The default sits beside this
# file (not in the current folder, which differs between nbgrader and the formgrader) and
# is created on first use, writable for all with the sticky bit, as nbgrader needs.
c.Exchange.root = str(ensure_exchange(os.environ.get("COURSE_EXCHANGE") or Path(__file__).resolve().parent / "exchange"))

# Formgrader and feedback HTML: the course's MathJax loader (a local copy under the
# formgrader, so LaTeX in answers renders offline) ahead of nbgrader's templates.
c.HTMLExporter.extra_template_basedirs = html_template_dirs()
# No student script runs in what a person opens (coursectl/sanitize.py): the notebook is
# cleaned before any template sees it (formgrader and feedback alike), markdown and HTML
# outputs are rendered through an allow-list, JavaScript outputs are dropped. Feedback
# pages carry MathJax inline (coursectl/offline_math.py): students open them offline.
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.preprocessors = [SanitizeNotebook]
c.HTMLExporter.filters = {
    "markdown2html": "coursectl.sanitize.markdown2html",
    "clean_html": "coursectl.sanitize.clean_html",
    "course_inline_mathjax": "coursectl.offline_math.InlineMathJax",
}

# Every cell gets a time limit; training cells shrink while NBGRADER_EXECUTION is set.
c.Execute.timeout = int(os.environ.get("COURSE_CELL_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True
# Student kernels run in the bubblewrap sandbox (coursectl/grading/sandbox.py) under plain
# nbgrader too; without bubblewrap they refuse to start unless COURSE_NO_SANDBOX=1.
c.Execute.kernel_manager_class = "coursectl.grading.worker.SandboxedKernelManager"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Trusted verdicts (coursectl/trusted.py): the hidden checks' inputs are planned here, the
# kernel only runs the student's code on them, and the verdict and score are decided in
# this process after execution. Library warnings (torch, librosa) printed on stderr must
# not zero a correct cell.
c.Autograde.autograde_preprocessors = [
    InjectProbes,
    Execute,
    ExtraCreditVerdicts,
    SoftenWarnings,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    ExtraCreditSaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
    SanitizeStoredOutputs,  # last, after the scores are saved: the stored notebook is clean
]

# nbconvert checks the notebook against the schema once, after the last of autograde's (and
# feedback's) 15 or so steps, instead of after each: about 0.1 s less per submission. (`course
# grade` checks and repairs what a student hands in before grading: grading/staging.py.)
c.Exporter.optimistic_validation = True

# Feedback must never show hidden test code: neither cell source nor traceback context.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor, SanitizeNotebook]
# Feedback pages: nbconvert's HTMLExporter with the MathJax bundle and the highlighted code
# put in after its pass over the rendered page (coursectl/grading/feedback.py): the same
# page byte for byte, in about 40% less time. `course grade` writes them with it too.
c.GenerateFeedback.exporter_class = "coursectl.grading.feedback.FeedbackExporter"
