"""Review sentiment data for assignment 2: read, tokenise and index.

Reads the IMDB dataset's on-disk layout (``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``).
The offline stand-in (real Amazon fine-food reviews) is written in the same layout, so
this code reads either; only its ``STANDIN`` marker tells them apart.

Words are indexed the way ``keras.datasets.imdb.load_data`` does it:
0 is padding, 1 marks the start of a review, 2 is an out-of-vocabulary word, and the
word of frequency rank ``r`` (1 = most common in the training reviews) gets index
``r + 3``; with ``num_words`` every index ``>= num_words`` becomes 2. Tokenisation and
ranking are cached in ``<root>/cache``; only the ``num_words`` cut is redone per call.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import dataset_dir, save_npz_atomic, shown

NAME = "imdb"
PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
SPLITS = ("train", "test")
LABELS = ("neg", "pos")  # label 0 and 1
SHUFFLE_SEED = 113  # Keras shuffles IMDB with this seed; we follow suit
_CACHE_VERSION = 1  # bump when tokenising or ranking changes, to retire old caches

_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; HTML line breaks (``<br />``) and punctuation are
    dropped, an apostrophe inside a word is kept ("don't")."""
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


def read_review(path) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


@dataclass
class Reviews:
    """One copy of the data, indexed with the Keras convention.

    ``x_train``/``x_test`` are lists of 1-D int64 arrays (one per review, starting
    with 1); ``y_*`` are int64 arrays, 1 = positive. ``train_files[i]`` is the file
    of ``x_train[i]``. ``word_index`` maps every word of the training reviews to its
    frequency rank (1 = most common), like ``keras.datasets.imdb.get_word_index()``.
    """
    root: Path
    source: str
    num_words: int | None
    x_train: list[np.ndarray]
    y_train: np.ndarray
    x_test: list[np.ndarray]
    y_test: np.ndarray
    train_files: list[Path] = field(repr=False)
    test_files: list[Path] = field(repr=False)
    word_index: dict[str, int] = field(repr=False)

    def decode(self, sequence) -> str:
        """Indices back to words; ``<start>``, ``<oov>`` and ``<pad>`` mark the special ones."""
        words = _words_by_rank(self.word_index)
        special = {PAD: "<pad>", START: "<start>", OOV: "<oov>"}
        out = []
        for i in sequence:
            i = int(i)
            out.append(special.get(i) or (words[i - INDEX_FROM - 1]
                                          if 0 <= i - INDEX_FROM - 1 < len(words) else "<?>"))
        return " ".join(out)


def load_imdb(num_words: int | None = 2000, root=None, build_if_missing: bool = True,
              cache: bool = True, verbose: bool = True) -> Reviews:
    """Load the reviews with the Keras indexing convention (see the module docstring).

    ``root=None`` picks the real IMDB data if it has been fetched
    (``course data --real imdb``), else the offline stand-in (built on first use
    when ``build_if_missing``). Training and test reviews are each shuffled with a
    fixed seed, so labels are mixed before any validation split.
    """
    root = Path(root) if root is not None else _default_root(build_if_missing)
    source = "offline stand-in" if (root / "STANDIN").exists() else "real"
    files, labels = {}, {}
    for split in SPLITS:
        files[split], labels[split] = _list_split(root, split)
    ranks, word_index = _indexed(root, files, cache)
    data = Reviews(
        root=root, source=source, num_words=num_words,
        x_train=_apply_cut(ranks["train"], num_words), y_train=labels["train"],
        x_test=_apply_cut(ranks["test"], num_words), y_test=labels["test"],
        train_files=files["train"], test_files=files["test"], word_index=word_index)
    if verbose:
        what = ("REAL IMDB movie reviews (aclImdb v1)" if source == "real" else
                "OFFLINE STAND-IN: real Amazon fine-food reviews (5 stars = positive, "
                "1-4 stars = negative), NOT movie reviews")
        print(f"Reviews: using {what} at {shown(root)}\n"
              f"  train {len(data.x_train)} (positive {int(data.y_train.sum())}), "
              f"test {len(data.x_test)} (positive {int(data.y_test.sum())}); "
              f"{len(word_index)} distinct words in the training reviews, "
              f"indices below {num_words} kept")
    return data


def _default_root(build_if_missing: bool) -> Path:
    real, offline = dataset_dir(NAME, offline=False), dataset_dir(NAME, offline=True)
    if real.is_dir():
        return real
    if offline.is_dir():
        return offline
    if not build_if_missing:
        raise FileNotFoundError(
            f"no review data at {real} or {offline}. Fetch the real data with "
            "`course data --real imdb` or build the stand-in with `course data imdb`.")
    from data_scripts import imdb as imdb_data

    print("Reviews: no data found, building the offline stand-in ...")
    return imdb_data.build_offline(offline)


def _list_split(root: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Files of one split in a fixed shuffled order, and their labels."""
    items = []
    for label, name in enumerate(LABELS):
        folder = root / "aclImdb" / split / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: not an aclImdb-style folder")
        for entry in os.scandir(folder):
            m = _FILE_NAME.match(entry.name)
            if m and entry.is_file():
                items.append((label, int(m.group(1)), Path(entry.path)))
    if not items:
        raise FileNotFoundError(f"no reviews under {root / 'aclImdb' / split}")
    items.sort(key=lambda t: (t[0], t[1]))
    order = np.random.RandomState(SHUFFLE_SEED).permutation(len(items))
    items = [items[i] for i in order]
    return [p for _, _, p in items], np.array([lab for lab, _, _ in items], dtype=np.int64)


def _indexed(root: Path, files: dict, cache: bool):
    """Per split, the concatenated word ranks and review ends (rank 0 = word not in
    the training reviews); and the word index. Cached, keyed on the file list."""
    listing = [[split, [(p.parent.name, p.name, p.stat().st_size) for p in files[split]]]
               for split in SPLITS]
    key = hashlib.sha256(json.dumps([_CACHE_VERSION, listing]).encode()).hexdigest()[:16]
    path = root / "cache" / f"tokens-{key}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as z:
                words = [str(w) for w in z["words"]]
                ranks = {s: (z[f"{s}_ranks"], z[f"{s}_ends"]) for s in SPLITS}
            return ranks, {w: r for r, w in enumerate(words, start=1)}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is recomputed

    tokens = {s: [tokenize(read_review(p)) for p in files[s]] for s in SPLITS}
    counts = Counter()
    for doc in tokens["train"]:
        counts.update(doc)
    # most_common sorts stably: equal counts keep their first-appearance order.
    words = [w for w, _ in counts.most_common()]
    word_index = {w: r for r, w in enumerate(words, start=1)}
    ranks = {}
    for s in SPLITS:
        flat = np.fromiter((word_index.get(w, 0) for doc in tokens[s] for w in doc), dtype=np.int32)
        ranks[s] = (flat, np.cumsum([len(doc) for doc in tokens[s]]).astype(np.int64))
    if cache:
        save_npz_atomic(path, "tokens", words=np.array(words, dtype=str),
                     **{f"{s}_{k}": v for s in SPLITS for k, v in zip(("ranks", "ends"), ranks[s])})
    return ranks, word_index


def _apply_cut(ranks_ends, num_words: int | None) -> list[np.ndarray]:
    flat, ends = ranks_ends
    idx = flat.astype(np.int64) + INDEX_FROM
    idx[flat == 0] = OOV
    if num_words is not None:
        idx[idx >= num_words] = OOV
    start = np.concatenate([[0], ends[:-1]])
    return [np.concatenate([[START], idx[a:b]]) for a, b in zip(start, ends)]


def _words_by_rank(word_index: dict[str, int]) -> list[str]:
    words = [""] * len(word_index)
    for w, r in word_index.items():
        words[r - 1] = w
    return words
