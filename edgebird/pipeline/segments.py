"""``edgebird segments``: audio clips of detections, for listening, reviewing and retraining.

Reads any result table ``analyze`` (or BirdNET-Analyzer) writes, per file or combined, tells
the format by its header (``writers.readers``), keeps detections with
``min_conf <= confidence <= max_conf``, picks at most ``max_segments`` per species, and cuts
each clip with context (``seg_length`` seconds centred on the detection) at 48 kHz, 16-bit,
named as BNA names them: ``<out>/<species>/<conf:.3f>_<n>_<file stem>_<start:.2f>s_<end:.2f>s.wav``
(``n`` counts the clips of one audio file). Species folders use the common name, as BNA does.

Where the audio is: the path in the table when it exists; otherwise the file under the audio
folder with the table's relative name (per-file tables) or the same file name (combined
tables), so results and recordings can be moved together. Only the needed stretch of each
recording is decoded, so hour-long files cost no more than short ones.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from edgebird.audio import (
    AudioError,
    AudioSettings,
    find_audio_files,
    output_stems,
    probe,
    read_blocks,
)
from edgebird.core.files import atomic_path
from edgebird.core.scores import DEFAULT_MIN_CONF, Detection
from edgebird.core.writers import split_label
from edgebird.core.writers.formats import FORMATS, MARK, combined_names
from edgebird.core.writers.readers import read_results
from edgebird.options import opt
from edgebird.pipeline.errorlog import ErrorLog

COLLECTION_MODES = ("random", "confidence", "balanced")
COMBINED_NAMES = combined_names()
#: Per-file table kinds, most informative first (the one used when a recording has several).
PREFERENCE = tuple(f.kind for f in FORMATS.values())


@dataclass(frozen=True)
class SegmentSettings:
    """BNA's ``segments`` options and defaults.

    ``balanced`` splits [min_conf, max_conf] into ``n_bins`` equal bins and takes up to
    ``max_segments // n_bins`` (at least 1) at random from each, so the clips span the score
    range (BNA 2.4's version never fills its top bin; this one does).
    """

    min_conf: float = field(default=DEFAULT_MIN_CONF, metadata=opt(
        "--min-conf", help="lowest confidence of a detection to cut"))
    max_conf: float = field(default=1.0, metadata=opt(
        "--max-conf", help="highest confidence of a detection to cut"))
    max_segments: int = field(default=100, metadata=opt(
        "--max-segments", help="clips per species at most"))
    seg_length: float = field(default=3.0, metadata=opt(
        "--seg-length", help="clip length in s, context added evenly around the detection "
                             "(at least 1.0)"))
    collection_mode: str = field(default="random", metadata=opt(
        "--collection-mode", choices=COLLECTION_MODES,
        help="which clips when there are more than --max-segments: random, the most "
             "confident, or balanced over confidence bins"))
    n_bins: int = field(default=10, metadata=opt("--n-bins", help="bins for balanced"))
    seed: int = field(default=0, metadata=opt("--seed", help="random choice seed"))

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_conf <= self.max_conf <= 1.0:
            raise ValueError("need 0 <= min_conf <= max_conf <= 1")
        if self.max_segments < 1 or self.n_bins < 1:
            raise ValueError("max segments and bins must be >= 1")
        if self.seg_length < 1.0:
            raise ValueError("segment length must be >= 1 s")
        if self.collection_mode not in COLLECTION_MODES:
            raise ValueError(f"collection mode must be one of {', '.join(COLLECTION_MODES)}")


@dataclass
class SegmentsSummary:
    tables: int = 0
    detections: int = 0
    selected: int = 0
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    searched: Path | None = None  # where the tables were looked for

    def text(self) -> str:
        if not self.tables:
            return no_tables_hint(self.searched)
        lines = [f"tables read: {self.tables}; detections in range: {self.detections}; "
                 f"selected: {self.selected}; clips written: {len(self.written)}"]
        if self.failed:
            lines.append("problems (see error_log.txt):")
            lines += [f"  {p}: {r}" for p, r in self.failed]
        return "\n".join(lines)


def no_tables_hint(searched: Path | None) -> str:
    """Why nothing was cut and what would be: "clips written: 0" alone leaves a user guessing
    whether the folder, the tables or the thresholds were wrong."""
    where = f" in {searched}" if searched else ""
    return (f"no result tables found{where} (searched it and its subfolders). segments cuts "
            f"clips from the tables `edgebird analyze` writes: per-file tables "
            f"(*{MARK}selection.table.txt, *{MARK}results.csv, ...) or a combined table "
            f"({', '.join(COMBINED_NAMES)}). Give their folder with --results, or run "
            f"`edgebird analyze` first.")


def find_tables(results: Path) -> tuple[list[Path], bool]:
    """``(tables, combined)``: a combined table in ``results`` wins (BNA's rule), else every
    per-file ``*.BirdNET.*`` table under it; a file is used as it is."""
    if results.is_file():
        return [results], results.name in COMBINED_NAMES
    if not results.is_dir():
        raise ValueError(f"results not found: {results}")
    for name in COMBINED_NAMES:
        if (results / name).is_file():
            return [results / name], True
    # One table per recording: several formats of the same results would repeat every clip.
    best: dict[str, tuple[int, Path]] = {}
    for p in sorted(results.rglob(f"*{MARK}*")):
        kind = p.name.split(MARK, 1)[1]
        if p.name.startswith(".") or kind not in PREFERENCE:
            continue
        stem = p.as_posix().split(MARK, 1)[0]
        rank = PREFERENCE.index(kind)
        if stem not in best or rank < best[stem][0]:
            best[stem] = (rank, p)
    return [p for _, p in best.values()], False


class _AudioIndex:
    """Audio files under a folder, by output stem (``audio.output_stems``: what analyze
    named their tables) and by file name."""

    def __init__(self, audio_dir: Path | None):
        self.by_stem: dict[str, Path] = {}
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        if audio_dir is not None and audio_dir.is_dir():
            files, _ = find_audio_files([audio_dir])
            stems = output_stems([rel for _, rel in files])
            for path, rel in files:
                self.by_stem[stems[rel]] = path
                self.by_name[path.name].append(path)

    def resolve(self, listed: str, table_stem: str | None) -> Path | None:
        if listed and Path(listed).is_file():
            return Path(listed)
        if table_stem is not None and table_stem in self.by_stem:
            return self.by_stem[table_stem]
        same = self.by_name.get(Path(listed.replace("\\", "/")).name, []) if listed else []
        return same[0] if len(same) == 1 else None


def collect(tables: list[Path], results_root: Path, index: _AudioIndex, s: SegmentSettings,
            log: ErrorLog) -> list[tuple[Path, Detection]]:
    """Every detection in range, with its audio file resolved."""
    out = []
    for table in tables:
        try:
            rtype, dets = read_results(table)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.error(str(table), f"cannot read this result table ({exc})")
            continue
        stem = None
        if results_root.is_dir() and MARK in table.name:
            rel = table.relative_to(results_root).as_posix()
            stem = rel.split(MARK, 1)[0]
        missing: set[str] = set()
        for d in dets:
            if not s.min_conf <= d.confidence <= s.max_conf:
                continue
            audio = index.resolve(d.file, stem)
            if audio is None:
                missing.add(d.file or str(table))
                continue
            out.append((audio, d))
        for m in sorted(missing):
            log.error(m, f"audio for detections in {table.name} not found (give the audio "
                         "folder as INPUT)")
    return out


def choose(found: list[tuple[Path, Detection]], s: SegmentSettings) -> list[tuple[Path, Detection]]:
    """At most ``max_segments`` per species by the collection mode (seeded, reproducible)."""
    rng = np.random.default_rng(s.seed)
    by_species: dict[str, list] = defaultdict(list)
    for item in found:
        by_species[split_label(item[1].label)[1]].append(item)
    chosen = []
    for species in sorted(by_species):
        items = by_species[species]
        if s.collection_mode == "random":
            order = rng.permutation(len(items))
            chosen += [items[i] for i in order[:s.max_segments]]
        elif s.collection_mode == "confidence":
            chosen += sorted(items, key=lambda it: -it[1].confidence)[:s.max_segments]
        else:
            edges = np.linspace(s.min_conf, s.max_conf, s.n_bins + 1)
            conf = np.array([it[1].confidence for it in items])
            bins = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, s.n_bins - 1)
            quota = max(1, s.max_segments // s.n_bins)
            for b in range(s.n_bins):
                members = np.flatnonzero(bins == b)
                chosen += [items[i] for i in rng.permutation(members)[:quota]]
    return chosen


_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def _folder_name(label: str) -> str:
    return _UNSAFE.sub("_", split_label(label)[1]).strip(" .") or "unknown"


def extract_file(audio: Path, detections: list[Detection], out: Path,
                 seg_length: float = 3.0, folder: str | None = None) -> list[Path]:
    """Cut one recording's clips (a pure function of its inputs: the unit to map in
    parallel). Each clip is written to a temporary file and renamed, so none is half there.
    Clips go into ``out/<species>/``, or ``out/folder`` when given (``search``'s training
    folders). Raises AudioError for an unreadable recording."""
    info = probe(audio)
    settings = AudioSettings()
    rate = settings.sample_rate
    total = info.target_samples(rate)
    written = []
    for n, d in enumerate(sorted(detections, key=lambda d: (d.start, d.label)), start=1):
        start, end = int(d.start * rate), min(int(d.end * rate), total)
        pad = max(0, (int(seg_length * rate) - (end - start)) // 2)
        lo, hi = max(0, start - pad), min(total, end + pad)
        if hi <= lo:
            continue
        clip = np.concatenate([x for _, x in read_blocks(info, settings, lo, hi)])
        where = out / (_folder_name(d.label) if folder is None else folder)
        where.mkdir(parents=True, exist_ok=True)
        name = f"{d.confidence:.3f}_{n}_{audio.stem}_{d.start:.2f}s_{d.end:.2f}s.wav"
        with atomic_path(where / name) as tmp:
            sf.write(tmp, clip, rate, subtype="PCM_16", format="WAV")
        written.append(where / name)
    return written


def extract_segments(audio_dir: str | os.PathLike | None, results: str | os.PathLike,
                     out: str | os.PathLike, settings: SegmentSettings = SegmentSettings(),
                     echo: Callable[[str], None] = print) -> SegmentsSummary:
    """Clips for the detections in ``results`` (a table or a folder of them) from the audio
    under ``audio_dir``; every problem is logged to ``out/error_log.txt`` and skipped."""
    out = Path(out)
    results = Path(results)
    log = ErrorLog(out / "error_log.txt", echo)
    summary = SegmentsSummary(searched=results)
    tables, _ = find_tables(results)
    summary.tables = len(tables)
    index = _AudioIndex(Path(audio_dir) if audio_dir else None)
    found = collect(tables, results, index, settings, log)
    summary.detections = len(found)
    chosen = choose(found, settings)
    summary.selected = len(chosen)
    per_file: dict[Path, list[Detection]] = defaultdict(list)
    for audio, d in chosen:
        per_file[audio].append(d)
    for audio in sorted(per_file):
        try:
            summary.written += extract_file(audio, per_file[audio], out, settings.seg_length)
        except AudioError as exc:
            log.error(str(audio), str(exc))
        except OSError as exc:
            log.error(str(audio), f"cannot cut clips ({exc.strerror or exc})")
    summary.failed = list(log.errors)
    return summary
