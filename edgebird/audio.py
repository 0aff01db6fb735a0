"""Audio in, fixed windows at the model's sample rate out.

Everything that touches samples before the model lives here: probing a file, decoding it in
blocks (a 2-hour file is never held whole), downmixing, resampling with soxr, the optional
Butterworth bandpass, and the framing rules. Framing follows BirdNET-Analyzer (BNA) so results
line up with what users already know: windows start at 0 and advance by ``segment - overlap``;
the last partial window is kept when at least ``min_segment_seconds`` long and zero-padded.

Decoding follows a fixed grid of 30-second blocks on the target timeline. Each block is
decoded on its own, from one second before it to one second after it (so the resampler and
the filter have settled), resampled in one shot, and trimmed to the block. Because every
reader, whether it reads the whole file or only some windows, produces each block the same
way, a long file can be cut into independent work units whose results are bit-identical to
one pass over the file. That matters more than it seems: BirdNET's log-spectrogram turns
float rounding differences of 1e-7 in zero-padded windows into embedding differences of 1e-3.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edgebird.core import BIRDNET_FMAX_HZ
from edgebird.core.quiet import captured_native_stderr, quiet_native_stderr
from edgebird.options import opt

SAMPLE_RATE = 48000
SEGMENT_SECONDS = 3.0
SEGMENT_SAMPLES = int(SAMPLE_RATE * SEGMENT_SECONDS)
#: BNA's bandpass defaults; with these no filter is applied (as in BNA).
DEFAULT_FMIN = 0.0
DEFAULT_FMAX = BIRDNET_FMAX_HZ
#: The decoding grid (see the module docstring). Whole seconds, so that source and target
#: sample grids coincide at block edges for every common rate. Bounds memory for any length.
BLOCK_SECONDS = 30
#: Decoded on each side of a block for the resampler's and the filter's warm-up.
PAD_SECONDS = 1
CROP_MODES = ("segments", "center", "first", "smart")
#: Training clips: the windows holding the calls (measured best, docs/TRAINING.md).
TRAINING_CROP_MODE = "smart"
#: Extensions collected from folders. libsndfile reads these; others are reported, not guessed.
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif", ".w64", ".rf64")
#: Formats users have that libsndfile cannot decode; named in the error so the fix is obvious.
NEEDS_FFMPEG = (".m4a", ".aac", ".wma", ".mp4", ".3gp", ".amr")


class AudioError(Exception):
    """A file that cannot be used, with a reason a user can act on."""


@dataclass(frozen=True)
class AudioSettings:
    """Everything that changes the samples the model sees (and so belongs in a cache key).

    Defaults equal BirdNET-Analyzer's. ``sample_rate`` and ``segment_seconds`` are the
    backbone's, not user choices; they are here so framing needs nothing else.
    """

    overlap: float = field(default=0.0, metadata=opt(
        "--overlap", help="overlap of consecutive 3-s windows in seconds, 0 <= o < 3"))
    fmin: float = field(default=DEFAULT_FMIN, metadata=opt(
        "--fmin", help="bandpass lower edge in Hz; 0: no high-pass"))
    fmax: float = field(default=DEFAULT_FMAX, metadata=opt(
        "--fmax", help="bandpass upper edge in Hz; the default applies no low-pass"))
    min_segment_seconds: float = field(default=1.0, metadata=opt(
        "--min-segment", metavar="SECONDS",
        help="keep a final partial window this long or longer, zero-padded"))
    crop_mode: str = field(default="segments", metadata=opt(
        "--crop-mode", choices=CROP_MODES,
        help="which windows of each file: all (segments), the middle one, the first one, or "
             "those holding the calls (smart)"))
    sample_rate: int = SAMPLE_RATE
    segment_seconds: float = SEGMENT_SECONDS

    def __post_init__(self) -> None:
        if not 0.0 <= self.overlap < self.segment_seconds:
            raise ValueError(
                f"overlap must be >= 0 and < {self.segment_seconds:g} s, got {self.overlap:g}"
            )
        if not 0.0 < self.min_segment_seconds <= self.segment_seconds:
            raise ValueError(
                f"min segment length must be in (0, {self.segment_seconds:g}] s, "
                f"got {self.min_segment_seconds:g}"
            )
        if not 0.0 <= self.fmin < self.fmax:
            raise ValueError(f"need 0 <= fmin < fmax, got fmin={self.fmin:g}, fmax={self.fmax:g}")
        if self.fmax > self.sample_rate / 2:
            raise ValueError(
                f"fmax {self.fmax:g} Hz is above Nyquist ({self.sample_rate / 2:g} Hz)"
            )
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}")

    @property
    def segment_samples(self) -> int:
        return int(round(self.segment_seconds * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round((self.segment_seconds - self.overlap) * self.sample_rate))

    @property
    def min_segment_samples(self) -> int:
        return int(round(self.min_segment_seconds * self.sample_rate))

    @property
    def bandpass_active(self) -> bool:
        return self.fmin > DEFAULT_FMIN or self.fmax < DEFAULT_FMAX

    def key(self) -> dict:
        """Plain dict of every field, for cache keys and parameter files."""
        return asdict(self)


@dataclass(frozen=True)
class AudioInfo:
    """What ``probe`` learns from a file's header (``frames``: what it decodes to, when a
    damaged file holds fewer than its header says). ``notes``: the decoder's warnings and
    a truncation, reported with the file (``notes_for``)."""

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    notes: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def target_samples(self, sample_rate: int = SAMPLE_RATE) -> int:
        """Length after resampling; readers pad or trim to exactly this."""
        return self.frames * sample_rate // self.sample_rate


def probe(path: str | os.PathLike) -> AudioInfo:
    """Read a file's header, or raise AudioError saying why the file cannot be used."""
    p = Path(path)
    if not p.exists():
        raise AudioError("file not found")
    if not p.is_file():
        raise AudioError("not a regular file")
    if not os.access(p, os.R_OK):
        raise AudioError("permission denied (the file is not readable)")
    if p.stat().st_size == 0:
        raise AudioError("empty file (0 bytes)")
    ext = p.suffix.lower()
    if ext in NEEDS_FFMPEG:
        raise AudioError(
            f"no decoder for '{ext}' files: edgebird reads WAV, FLAC, OGG/Opus and MP3; "
            f"convert it first, e.g. ffmpeg -i '{p.name}' '{p.stem}.flac'"
        )
    try:
        with captured_native_stderr() as said:
            info = sf.info(str(p))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"not an audio file, or damaged ({_short(exc)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError("contains no audio samples")
    notes = [f"decoder: {line}" for line in dict.fromkeys(said) if _worth_saying(line)]
    frames = int(info.frames)
    if info.format in CHECK_LENGTH:
        decoded = _decoded_frames(p, frames, int(info.samplerate))
        if decoded < frames:
            sr = int(info.samplerate)
            notes.append(f"truncated or damaged: its header says {frames / sr:.2f} s, it decodes "
                         f"to {decoded / sr:.2f} s; analyzed as {decoded / sr:.2f} s")
            frames = decoded
            if frames <= 0:
                raise AudioError("truncated or damaged: no audio decodes from it")
    return AudioInfo(str(p), int(info.samplerate), int(info.channels), frames, info.format,
                     tuple(notes))


#: Compressed formats whose header states a length the data may not hold (a cut-off MP3
#: still says 60 s): their tail is read to check it.
CHECK_LENGTH = ("MP3", "FLAC", "OGG")


def _worth_saying(line: str) -> bool:
    """mpg123's warnings (a Xing header that disagrees with the data: cut or damaged) are
    worth a note; its resync chatter is not."""
    return line.startswith("Warning:")


def _decoded_frames(p: Path, frames: int, sr: int) -> int:
    """``frames`` if the last second decodes, else what the file really decodes to (counted
    block by block: only a damaged file pays for a full decode)."""
    tail = min(frames, sr)
    try:
        with quiet_native_stderr(), sf.SoundFile(str(p)) as f:
            f.seek(frames - tail)
            if len(f.read(tail, dtype="float32", always_2d=True)) >= tail:
                return frames
        n = 0
        with quiet_native_stderr(), sf.SoundFile(str(p)) as f:
            while True:
                got = len(f.read(BLOCK_SECONDS * sr, dtype="float32", always_2d=True))
                n += got
                if got < BLOCK_SECONDS * sr:
                    break
        return min(n, frames)
    except (sf.LibsndfileError, RuntimeError):
        return frames  # cannot tell here; decoding will say what is wrong


def notes_for(info: AudioInfo, settings: AudioSettings) -> list[str]:
    """Warnings that do not stop a file but that a user should see (logged per file)."""
    notes = list(info.notes)
    nyquist = info.sample_rate / 2
    if nyquist < min(settings.fmax, 12000):
        notes.append(
            f"sample rate {info.sample_rate} Hz holds nothing above {nyquist:g} Hz; "
            "BirdNET listens up to 15 kHz, so high songs are missing and scores may be lower"
        )
    return notes


def window_starts(n_samples: int, settings: AudioSettings) -> np.ndarray:
    """Start samples of the ``segments`` framing (BNA's rule) for a signal of ``n_samples``."""
    if n_samples < settings.min_segment_samples:
        return np.zeros(0, dtype=np.int64)
    last = n_samples - settings.min_segment_samples  # a window needs this many real samples
    return np.arange(0, last + 1, settings.hop_samples, dtype=np.int64)


def planned_starts(info: AudioInfo, settings: AudioSettings) -> np.ndarray:
    """Window starts for a file without reading its samples (all modes but ``smart``).

    Raises AudioError when the file is shorter than the minimum segment length.
    """
    n = info.target_samples(settings.sample_rate)
    if n < settings.min_segment_samples:
        raise AudioError(
            f"too short: {info.duration:.2f} s of audio, the minimum is "
            f"{settings.min_segment_seconds:g} s"
        )
    mode = settings.crop_mode
    if mode == "segments" or mode == "smart":
        return window_starts(n, settings)
    if mode == "first":
        return np.zeros(1, dtype=np.int64)
    # center: the middle window, or the whole (padded) clip when it is shorter than a window
    return np.array([max(0, (n - settings.segment_samples) // 2)], dtype=np.int64)


def downmix(data: np.ndarray) -> np.ndarray:
    """Mean of the channels of ``[frames, channels]`` float32 audio.

    Summed column by column: ``ndarray.mean(axis=1)`` is a strided reduction, 13x slower on
    a stereo block, and for two channels this is bit-identical to it.
    """
    if data.shape[1] == 1:
        return data[:, 0]
    mono = data[:, 0].copy()
    for c in range(1, data.shape[1]):
        mono += data[:, c]
    mono *= np.float32(1.0 / data.shape[1])
    return mono


def _bandpass(x: np.ndarray, settings: AudioSettings) -> np.ndarray:
    """Butterworth order-5 filter (BNA's): band, high- or low-pass as the edges ask."""
    from scipy.signal import butter, sosfilt  # only needed when a filter is on

    nyq = settings.sample_rate / 2
    if settings.fmin > 0 and settings.fmax < nyq:
        sos = butter(5, [settings.fmin / nyq, settings.fmax / nyq], btype="band", output="sos")
    elif settings.fmin > 0:
        sos = butter(5, settings.fmin / nyq, btype="high", output="sos")
    else:
        sos = butter(5, settings.fmax / nyq, btype="low", output="sos")
    return sosfilt(sos, x).astype(np.float32, copy=False)


def read_blocks(
    info: AudioInfo,
    settings: AudioSettings,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_sample, samples)``: mono float32 at ``settings.sample_rate`` covering
    target samples ``[start, stop)`` (default: the whole file), one block at a time.

    The pieces together hold exactly ``stop - start`` samples, zero-padded if the decoder
    returns fewer frames than the header promised. Raises AudioError on decode errors and on
    NaN/inf samples.
    """
    rate, src = settings.sample_rate, info.sample_rate
    total = info.target_samples(rate)
    stop = total if stop is None else min(stop, total)
    if start >= stop:
        return
    block = BLOCK_SECONDS * rate
    try:
        for b in range(start // block, (stop - 1) // block + 1):
            lo = max(0, b * BLOCK_SECONDS - PAD_SECONDS)  # seconds
            first = lo * src
            want = min((b + 1) * BLOCK_SECONDS + PAD_SECONDS - lo, info.frames) * src
            # A fresh decoder per block: MP3 decoders carry state across seeks, so only a
            # cold open + seek gives the same samples whichever block was read before.
            with quiet_native_stderr(), sf.SoundFile(info.path) as f:
                f.seek(min(first, info.frames))
                data = f.read(max(0, min(want, info.frames - first)), dtype="float32",
                              always_2d=True)
            mono = downmix(data)
            if not np.isfinite(mono).all():
                bad = int(np.flatnonzero(~np.isfinite(mono))[0]) + first
                raise AudioError(f"corrupt samples: NaN or infinite values at {bad / src:.2f} s")
            out = soxr.resample(mono, src, rate) if src != rate and len(mono) else mono
            if settings.bandpass_active and len(out):
                out = _bandpass(out, settings)
            g0 = b * block
            length = min(block, total - g0)
            a = (b * BLOCK_SECONDS - lo) * rate
            body = out[a:a + length]
            if len(body) < length:  # decoder delivered fewer frames than promised
                body = np.concatenate([body, np.zeros(length - len(body), np.float32)])
            s0, s1 = max(start, g0) - g0, min(stop, g0 + length) - g0
            yield g0 + s0, body[s0:s1]
    except sf.LibsndfileError as exc:
        raise AudioError(f"decoding failed ({_short(exc)})") from None


def iter_windows(
    info: AudioInfo,
    settings: AudioSettings,
    starts: np.ndarray,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start_sample, window)`` for each of the sorted ``starts``; windows are padded.

    Only the blocks that the windows cover are decoded, and at most one block plus one
    window is held in memory.
    """
    if len(starts) == 0:
        return
    seg = settings.segment_samples
    pending = [int(s) for s in starts]
    buf = np.zeros(0, dtype=np.float32)
    origin = pending[0]  # global sample index of buf[0]
    i = 0
    for g0, piece in read_blocks(info, settings, pending[0], pending[-1] + seg):
        if not len(buf):
            origin = g0
        buf = np.concatenate([buf, piece]) if len(buf) else piece
        while i < len(pending) and pending[i] + seg <= origin + len(buf):
            a = pending[i] - origin
            yield pending[i], buf[a:a + seg].copy()
            i += 1
        if i < len(pending):  # drop what no later window needs
            drop = min(pending[i] - origin, len(buf))
            if drop > 0:
                buf, origin = buf[drop:], origin + drop
    while i < len(pending):  # windows running past the end of the file: zero-pad
        a = pending[i] - origin
        window = np.zeros(seg, dtype=np.float32)
        piece = buf[max(a, 0):a + seg]
        window[:len(piece)] = piece
        yield pending[i], window
        i += 1


def load(path: str | os.PathLike, settings: AudioSettings | None = None) -> np.ndarray:
    """The whole file as mono float32 at the target rate. For short clips only."""
    settings = settings or AudioSettings()
    info = probe(path)
    blocks = [piece for _, piece in read_blocks(info, settings)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def smart_starts(windows: np.ndarray, starts: np.ndarray, max_peaks: int = 5) -> np.ndarray:
    """Pick the windows of a clip that hold its calls (the ``smart`` crop).

    Each window is scored ``0.7 * RMS + 0.3 * peak`` (BNA's score). Local maxima of the score
    that stand out from the clip's typical level (at least a quarter of the way from the
    median to the maximum) are kept, loudest first, at most ``max_peaks``. A flat clip (no
    such maximum) keeps its loudest ``max(3, n // 3)`` windows. Unlike BNA, a clip with a
    single call yields that one window rather than padding up to three. Returned in time order.
    """
    n = len(starts)
    if n <= 1:
        return np.asarray(starts, dtype=np.int64)
    from scipy.signal import find_peaks

    rms = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=1))
    peak = np.max(np.abs(windows), axis=1)
    score = 0.7 * rms + 0.3 * peak
    median, top = float(np.median(score)), float(score.max())
    peaks, _ = find_peaks(np.pad(score, 1, mode="constant", constant_values=-np.inf))
    peaks = peaks - 1
    if top > median * (1 + 1e-6):
        peaks = peaks[score[peaks] >= median + 0.25 * (top - median)]
    else:
        peaks = peaks[:0]
    if len(peaks):
        chosen = peaks[np.argsort(score[peaks])[::-1][:max_peaks]]
    else:
        chosen = np.argsort(score)[::-1][: min(n, max(3, n // 3))]
    return np.sort(np.asarray(starts)[chosen]).astype(np.int64)


def find_audio_files(
    inputs: list[str | os.PathLike],
) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into ``(path, relative name)`` pairs.

    The relative name mirrors the input tree (for output files). With several inputs each
    folder's files are under a subfolder named after the folder, ``A-2``, ``A-3``... for a
    second and third folder of the same name (in input order); a file argument is named by
    its file name, ``rec-2.wav`` for a second one of the same name. So relative names are
    unique (compared case-insensitively, as macOS and Windows file systems do) and the same
    input list always gives the same names. Returns ``(files, problems)``: a named path that
    does not exist, a folder that cannot be read and a folder with no audio file are
    problems (path, reason), never silently dropped. Folder symlinks are followed (a loop
    is walked once). Hidden files and folders (starting with '.') are skipped, as BNA does.
    Files that libsndfile cannot decode (m4a, wma...) are kept so the user is told why
    they fail.
    """
    files: list[tuple[Path, str]] = []
    problems: list[tuple[str, str]] = []
    several = len(inputs) > 1
    roots: set[str] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            prefix = Path()
            if several:
                prefix = Path(_unique(p.resolve().name, roots))
                roots.add(prefix.name.casefold())
            found = [(f, str(prefix / rel)) for f, rel in _walk(p, problems)]
            if not found:
                problems.append((str(p), "no audio files found in this folder (looked for "
                                 f"{', '.join(AUDIO_EXTENSIONS)})"))
            files += found
        elif p.exists():
            files.append((p, p.name))
        else:
            problems.append((str(p), "file or folder not found"))
    seen: set[Path] = set()
    taken: set[str] = set()
    unique = []
    for f, rel in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            rel = _unique(rel, taken)
            taken.add(rel.casefold())
            unique.append((f, rel))
    return unique, problems


def _walk(top: Path, problems: list[tuple[str, str]]) -> Iterator[tuple[Path, str]]:
    """Audio files under ``top`` with their names relative to it, in sorted order, following
    folder symlinks (each real folder once, so a link loop ends); unreadable folders go to
    ``problems``."""
    visited: set[str] = set()

    def unreadable(exc: OSError) -> None:
        problems.append((str(exc.filename or top),
                         f"cannot read the folder ({exc.strerror or exc}); its files are "
                         "not analyzed"))

    for root, dirs, names in os.walk(top, onerror=unreadable, followlinks=True):
        real = os.path.realpath(root)
        if real in visited:  # a symlink back into the tree: walked already
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            ext = os.path.splitext(name)[1].lower()
            if name.startswith(".") or ext not in AUDIO_EXTENSIONS + NEEDS_FFMPEG:
                continue
            full = Path(root) / name
            yield full, str(full.relative_to(top))


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext``... (the first one not in ``taken``,
    compared case-folded) for a name already given to another input."""
    if name.casefold() not in taken:
        return name
    parent, base = os.path.split(name)
    stem, ext = os.path.splitext(base) if "." in base[1:] else (base, "")
    n = 2
    while True:
        candidate = os.path.join(parent, f"{stem}-{n}{ext}")
        if candidate.casefold() not in taken:
            return candidate
        n += 1


def output_stems(rels: list[str]) -> dict[str, str]:
    """The output name (before a table's suffix) of each relative name: the name without
    its extension (BNA's ``rec.BirdNET...``), or with it (``rec.mp3.BirdNET...``) for inputs
    that would otherwise share one (``rec.mp3`` and ``rec.wav``; compared case-folded).
    Depends only on the list, so a rerun gives the same names."""
    stems = {rel: os.path.splitext(rel)[0] for rel in rels}
    while True:
        count: dict[str, int] = {}
        for stem in stems.values():
            count[stem.casefold()] = count.get(stem.casefold(), 0) + 1
        clash = [rel for rel, stem in stems.items() if count[stem.casefold()] > 1
                 and stem != rel]
        if not clash:
            return stems
        for rel in clash:
            stems[rel] = rel


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[-1] if text else type(exc).__name__
    msg = msg.split(": ", 1)[-1].strip() if "Error opening" in msg else msg
    # libsndfile's text when no decoder takes the file: the file was already found regular
    if not msg or "not a regular file" in msg or "possibly a pipe" in msg:
        return "no decoder recognizes its content"
    return msg
