"""Google Speech Commands v0.02: unpack the real archive, or synthesise a stand-in.

Both write the same layout, which is the real dataset's::

    one/<speaker>_nohash_<n>.wav     16 kHz mono 16-bit PCM, at most 1 s
    two/...  three/...
    validation_list.txt              relative paths, one per line
    testing_list.txt

so ``coursekit.speech`` reads either without knowing which it is. The stand-in
also holds ``SYNTHETIC`` and ``README.txt``.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import wave
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from .download import ArchiveError, atomic_directory, fetch
from .registry import DatasetSpec, register

# SHA-256 and size as listed in TensorFlow Datasets
# (tensorflow_datasets/url_checksums/speech_commands.txt); torchaudio's
# SPEECHCOMMANDS pins the same SHA-256 for this URL.
SPEECH_COMMANDS = DatasetSpec(
    name="speech_commands",
    url="http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    filename="speech_commands_v0.02.tar.gz",
    size_bytes=2_428_923_189,
    description="Google Speech Commands v0.02 (Warden 2018), 35 words, "
                "16 kHz WAV, CC BY 4.0",
)

CLASSES = ("one", "two", "three")
LISTS = ("validation_list.txt", "testing_list.txt")
SAMPLE_RATE = 16000


# ---------------------------------------------------------------- real data

def fetch_real(dest: Path, download_dir: Path, classes=CLASSES) -> Path:
    """Download (or reuse) the checked archive and unpack the course's classes into ``dest``."""
    archive = fetch(SPEECH_COMMANDS, download_dir)
    return prepare_real(archive, dest, classes)


def prepare_real(archive: Path, dest: Path, classes=CLASSES) -> Path:
    """Extract only ``classes`` and the two split lists (filtered to them) from the
    real .tar.gz into ``dest``. All or nothing: on any error ``dest`` is untouched."""
    classes = tuple(classes)
    keep_extra = ("LICENSE", "README.md")  # CC BY 4.0 asks for attribution
    counts = dict.fromkeys(classes, 0)
    lists: dict[str, list[str]] = {}
    try:
        with atomic_directory(dest) as tmp:
            for c in classes:
                (tmp / c).mkdir()
            # Streaming mode ("r|gz"): one pass over a 2.4 GB archive, no seeking.
            with tarfile.open(archive, "r|gz") as tar:
                for member in tar:
                    parts = PurePosixPath(member.name).parts
                    parts = tuple(p for p in parts if p != ".")
                    if not member.isfile() or ".." in parts or not parts:
                        continue
                    if len(parts) == 2 and parts[0] in classes and parts[1].endswith(".wav"):
                        (tmp / parts[0] / parts[1]).write_bytes(tar.extractfile(member).read())
                        counts[parts[0]] += 1
                    elif len(parts) == 1 and parts[0] in LISTS:
                        text = tar.extractfile(member).read().decode("utf-8")
                        lists[parts[0]] = [line.strip() for line in text.splitlines()
                                           if line.strip().split("/", 1)[0] in classes]
                    elif len(parts) == 1 and parts[0] in keep_extra:
                        (tmp / parts[0]).write_bytes(tar.extractfile(member).read())
            missing = [c for c, n in counts.items() if n == 0] + [n for n in LISTS if n not in lists]
            if missing:
                raise ArchiveError(f"{archive} has no {', '.join(missing)}; is it the "
                                   "Speech Commands v0.02 archive?")
            for name, lines in lists.items():
                (tmp / name).write_text("".join(line + "\n" for line in lines))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ArchiveError(f"could not unpack {archive}: {exc}. Nothing was written to "
                           f"{dest}. If the archive is damaged, delete it and fetch it "
                           "again.") from exc
    return dest


# ---------------------------------------------------- synthetic stand-in

# English accents shipped with espeak-ng 1.52 (espeak-ng-data/lang/gmw).
ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp",
           "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")


def voice_variants() -> list[str]:
    """Names of espeak-ng's voice variants (``espeak-ng-data/voices/!v``)."""
    import espeakng_loader

    folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file() and " " not in p.name)


def speaker_id(voice: str) -> str:
    """8 hex digits, like the real dataset's anonymised speaker ids."""
    return hashlib.sha256(voice.encode()).hexdigest()[:8]


def build_offline(dest: Path, seed: int = 0, n_speakers: int = 96, takes: int = 4,
                  classes=CLASSES) -> Path:
    """Synthesise a stand-in for the three-word subset into ``dest``.

    A speaker is one (accent, voice variant) pair with its own pitch and speed;
    each says each word ``takes`` times with small changes. Speakers are split
    about 80/10/10 into train/validation/test, so no voice is in two splits.
    The same arguments give byte-identical files.
    """
    from scipy.signal import resample_poly

    variants = voice_variants()
    if not 3 <= n_speakers <= len(ACCENTS) * len(variants):
        raise ValueError(f"n_speakers must be 3..{len(ACCENTS) * len(variants)} "
                         "(one per split at least, each voice once)")
    rng = np.random.default_rng(seed)
    per_accent = {a: list(rng.permutation(variants)) for a in ACCENTS}
    speakers = []
    for i in range(n_speakers):
        accent = ACCENTS[i % len(ACCENTS)]
        voice = f"{accent}+{per_accent[accent].pop()}"
        speakers.append(dict(voice=voice, id=speaker_id(voice),
                             pitch=int(rng.integers(25, 76)), rate=int(rng.integers(140, 211)),
                             range=int(rng.integers(30, 81))))
    if len({s["id"] for s in speakers}) != len(speakers):
        raise RuntimeError("two voices hash to the same speaker id; change the seed")

    order = rng.permutation(n_speakers)
    n_held = max(1, round(0.1 * n_speakers))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[speakers[i]["id"]] = ("test" if rank < n_held else
                                       "validation" if rank < 2 * n_held else "train")

    jobs, names = [], []
    for s in speakers:
        for word in classes:
            for take in range(takes):
                jobs.append((s["voice"], word, s["rate"] + int(rng.integers(-15, 16)),
                             s["pitch"] + int(rng.integers(-6, 7)), s["range"]))
                names.append(f"{word}/{s['id']}_nohash_{take}.wav")

    raw, espeak_rate = _synthesise_in_fresh_process(jobs)

    with atomic_directory(dest) as tmp:
        for word in classes:
            (tmp / word).mkdir()
        for k, (name, audio) in enumerate(zip(names, raw)):
            clip_rng = np.random.default_rng([seed, k])
            speech = resample_poly(_trim(audio), SAMPLE_RATE, espeak_rate)
            _write_wav(tmp / name, _place(speech, clip_rng))
        for list_name, split in zip(LISTS, ("validation", "test")):
            lines = [n for n in sorted(names) if split_of[n.split("/")[1][:8]] == split]
            (tmp / list_name).write_text("".join(line + "\n" for line in lines))
        (tmp / "SYNTHETIC").write_text("This folder is a synthetic stand-in, not real recordings.\n")
        (tmp / "README.txt").write_text(_readme(seed, speakers, split_of, takes, classes))
    return dest


def _synthesise_in_fresh_process(jobs):
    # espeak-ng carries state from one utterance to the next (reseeding does not
    # reset it), so a clip depends on what was spoken before it in the process.
    # A fresh process that speaks the same list in the same order repeats exactly.
    # A plain subprocess (not multiprocessing) works from scripts without a main guard.
    import json
    import subprocess
    import sys
    import tempfile

    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from data_scripts.speech_commands import _synthesise_main; _synthesise_main(sys.argv[2])")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "audio.npz"
        proc = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parents[1]), str(out)],
                              input=json.dumps(jobs), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng synthesis failed:\n{proc.stderr[-3000:]}")
        with np.load(out) as z:
            audio, ends, rate = z["audio"], z["ends"], int(z["rate"])
    return np.split(audio, ends[:-1]), rate


def _synthesise_main(out_path: str) -> None:
    """Child-process entry: jobs as JSON on stdin, all audio into one .npz."""
    import json
    import sys

    clips, rate = _synthesise_all(json.load(sys.stdin))
    np.savez(out_path, audio=np.concatenate(clips), ends=np.cumsum([len(c) for c in clips]),
             rate=rate)


def _synthesise_all(jobs):
    """Run espeak-ng in this process; return (list of int16 arrays, its sample rate)."""
    import ctypes

    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    AUDIO_OUTPUT_SYNCHRONOUS, POS_CHARACTER, CHARS_UTF8 = 2, 1, 1
    RATE, PITCH, RANGE = 1, 3, 4

    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                 espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        raise RuntimeError("espeak-ng failed to initialise (espeakng_loader data path?)")
    chunks: list[np.ndarray] = []

    @ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
    def on_audio(wav, n, events):
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0  # 0 = keep going

    lib.espeak_SetSynthCallback(on_audio)
    lib.espeak_ng_SetRandSeed(0)
    out = []
    for voice, text, wpm, pitch, prange in jobs:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((RATE, wpm), (PITCH, pitch), (RANGE, prange)):
            lib.espeak_SetParameter(param, value, 0)
        chunks.clear()
        data = text.encode()
        if lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None) != 0:
            raise RuntimeError(f"espeak-ng could not speak {text!r} with {voice!r}")
        lib.espeak_Synchronize()
        if not chunks:
            raise RuntimeError(f"espeak-ng produced no audio for {text!r} with {voice!r}")
        out.append(np.concatenate(chunks))
    lib.espeak_Terminate()
    return out, rate


def _trim(audio: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] without espeak's leading and trailing silence."""
    x = audio.astype(np.float64) / 32768.0
    loud = np.flatnonzero(np.abs(x) > 0.02 * np.abs(x).max())
    if loud.size == 0:
        raise RuntimeError("espeak-ng produced a silent clip")
    return x[max(loud[0] - 100, 0): loud[-1] + 100]


def _place(speech: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Put the word at a random time in a clip (1 s, sometimes shorter like real
    clips), set a random level and add light noise; return int16."""
    speech = speech[:SAMPLE_RATE]
    length = SAMPLE_RATE
    if rng.random() < 0.1:
        length = int(rng.integers(min(len(speech) + 1600, SAMPLE_RATE), SAMPLE_RATE + 1))
    start = int(rng.integers(0, length - len(speech) + 1))
    clip = np.zeros(length)
    peak = rng.uniform(0.15, 0.8)
    clip[start:start + len(speech)] = speech * (peak / np.abs(speech).max())
    snr_db = rng.uniform(25.0, 45.0)
    clip += rng.normal(0.0, peak * 10 ** (-snr_db / 20), length)
    return np.round(np.clip(clip, -1.0, 1.0) * 32767).astype(np.int16)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    path.write_bytes(buf.getvalue())


def _readme(seed, speakers, split_of, takes, classes) -> str:
    rows = "\n".join(f"  {s['id']}  {split_of[s['id']]:<10}  {s['voice']:<28} "
                     f"pitch {s['pitch']:>2}  rate {s['rate']} wpm  range {s['range']}"
                     for s in speakers)
    accents = "\n".join(f"  {a}" for a in ACCENTS)
    return f"""SYNTHETIC stand-in for Google Speech Commands v0.02 -- not real recordings.

Made by data_scripts/speech_commands.py with the espeak-ng speech synthesiser
(libespeak-ng and its voice data from the PyPI wheel espeakng-loader
{_version("espeakng-loader")}). Words: {", ".join(classes)}. Seed: {seed}.
Speakers: {len(speakers)}, each saying each word {takes} times with small
pitch and speed changes.

A speaker is one espeak-ng English accent combined with one espeak-ng voice
variant (espeak-ng-data/voices/!v), plus its own pitch, pitch range and speed.
Accents:
{accents}
The 22050 Hz synthesiser output is trimmed, resampled to 16 kHz, placed at a
random time in a clip of at most 1 s, scaled to a random level and given light
Gaussian noise (25-45 dB below the peak).

The layout and WAV format (16 kHz mono 16-bit PCM) match the real dataset.
validation_list.txt and testing_list.txt split BY SPEAKER (about 80/10/10).
Accuracy on this data says nothing about accuracy on real speech.

speaker   split       voice                        settings
{rows}
"""


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


SPEECH_COMMANDS = register(SPEECH_COMMANDS, build_offline=build_offline, fetch_real=fetch_real)
