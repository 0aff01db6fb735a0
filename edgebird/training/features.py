"""Labelled files → a training matrix: one row per 3-s window, embeddings from the store.

Embeddings come from ``embed_files`` (so a second training run on the same data is a cache
hit, and unreadable files are skipped and listed). A whole long recording labelled as one
species keeps its windows that hold sound, bounded per recording (``windows.py``). Synthetic
non-bird sounds (rain, wind, engines, hiss, a quiet floor) are embedded in process and added
as background rows, the first line of defence against the false positives users complain
about most.

Annotated recordings (``annotation_windows``) are embedded whole, window by window, and each
window appears once:

- a window *belongs* to an annotation when it covers at least ``MIN_ANNOTATION_OVERLAP``
  seconds of it, or all of an annotation shorter than that (a 0.4-s call inside the window
  belongs; a 0.4-s call cut in two by a window edge belongs to neither window). Its label
  vector is the union of the labels of every annotation it belongs to, so two species calling
  at once give one multi-label row, not two contradictory one-hot rows. Annotations labelled
  like a non-event folder (``noise``...) give background rows where no species is present;
- a window that overlaps no annotation by more than ``UNANNOTATED_TOLERANCE`` seconds is
  unannotated time. When the recording is fully annotated it can be trained as background
  (kind ``unannotated``, all-zero targets): ``unannotated_negatives`` ``auto`` (for the
  recordings the table marks complete), ``yes`` (every annotated recording) or ``no``. At most
  ``MAX_UNANNOTATED_PER_RECORDING`` such windows per recording, evenly spread over it, so a
  long soundscape does not swamp the calls. A window between the two rules (it touches a call
  by more than the tolerance but less than the minimum overlap) is neither positive nor
  negative: it holds part of a call, so a 0 target for it would teach the head to ignore calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgebird.audio import AudioSettings
from edgebird.backbones import EmbeddingModel
from edgebird.pipeline import engine as eng
from edgebird.pipeline.embed import embed_files
from edgebird.synth import noise_windows
from edgebird.training.dataset import DatasetError, LabelledFile, TrainingSet
from edgebird.training.windows import (
    DEFAULT_MAX_WINDOWS,
    LONG_RECORDING_WINDOWS,
    long_recordings,
    select_windows,
)

#: A window belongs to an annotation when it covers this much of it (or all of a short one).
MIN_ANNOTATION_OVERLAP = 1.0
#: A window overlapping every annotation by at most this much (seconds) is unannotated time:
#: hand-drawn boxes are loose by about this much, so touching a box edge is not hearing it.
UNANNOTATED_TOLERANCE = 0.1
#: ``unannotated_negatives``: auto (recordings the table marks complete), yes, no.
UNANNOTATED_CHOICES = ("auto", "yes", "no")
#: At most this many unannotated windows per recording become negatives (evenly spread).
MAX_UNANNOTATED_PER_RECORDING = 50


@dataclass
class Features:
    """Rows are windows. ``y`` is 0/1 per class; ``kind`` is positive / background /
    negative (a ``-Label`` folder) / unannotated (unannotated time of an annotated
    recording) / synthetic."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    files: np.ndarray
    starts: np.ndarray
    kind: np.ndarray
    classes: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: long recordings whose windows were chosen by activity: file -> (kept, held sound, all)
    selected: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, idx: np.ndarray) -> Features:
        return Features(self.x[idx], self.y[idx], self.groups[idx], self.files[idx],
                        self.starts[idx], self.kind[idx], self.classes, self.skipped)

    def concat(self, other: Features) -> Features:
        return Features(*(np.concatenate([getattr(self, a), getattr(other, a)])
                          for a in ("x", "y", "groups", "files", "starts", "kind")),
                        self.classes, self.skipped + other.skipped)

    def groups_per_class(self) -> dict[str, int]:
        """Recordings that gave at least one window, per class: what the folds can use."""
        return {c: len(np.unique(self.groups[self.y[:, i] > 0.5]))
                for i, c in enumerate(self.classes)}

    def annotation_summary(self) -> str:
        """What the annotation rules made of the data ('' when they made nothing), for the
        console and the report's data section."""
        multi = int((self.y.sum(axis=1) > 1.5).sum())
        unannotated = self.kind == "unannotated"
        if not multi and not unannotated.any():
            return ""
        return (f"{multi} multi-label window(s) (two or more species at once); "
                f"{int(unannotated.sum())} unannotated-time window(s) as background from "
                f"{len(np.unique(self.groups[unannotated]))} recording(s)")

    def strata(self) -> np.ndarray:
        """Label combination per row ('' for background): the stratum for grouped splits."""
        return np.array(["+".join(np.asarray(self.classes)[r > 0.5]) for r in self.y])


def build_features(
    ts: TrainingSet,
    store: str | os.PathLike,
    audio: AudioSettings,
    model: EmbeddingModel,
    engine: eng.EngineSettings = eng.EngineSettings(),
    classes: list[str] | None = None,
    require_all: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    max_windows: int = DEFAULT_MAX_WINDOWS,
    unannotated_negatives: str = UNANNOTATED_CHOICES[0],
) -> Features:
    """Embed every file of ``ts`` (cached in ``store``) and label its windows.

    ``classes`` fixes the column order (a test set must use the training set's classes;
    a test class the training set lacks is an error). With ``require_all`` every class must
    keep at least one readable window. With the smart crop, a whole-file label on a long
    recording keeps its windows that hold sound, at most ``max_windows`` (``windows.py``).
    Annotated recordings are labelled by ``annotation_windows`` (``unannotated_negatives``:
    see the module docstring).
    """
    if unannotated_negatives not in UNANNOTATED_CHOICES:
        raise ValueError(f"unannotated_negatives must be one of {UNANNOTATED_CHOICES}")
    classes = classes or ts.classes
    unknown = sorted({p for f in ts.files for p in f.positives} - set(classes))
    if unknown:
        raise DatasetError(f"classes not in the training data: {', '.join(unknown)}")
    col = {c: i for i, c in enumerate(classes)}
    annotated = any(f.begin is not None for f in ts.files)
    # Annotations point into long recordings: use all their windows and pick by overlap.
    file_audio = replace(audio, crop_mode="segments") if annotated else audio
    paths = sorted({str(f.path) for f in ts.files})
    long = set() if annotated else long_files(paths, audio, max_windows)
    summary = embed_labelled(paths, long, store, file_audio, engine, model, progress, echo)
    selected: dict[str, tuple[int, int, int]] = {}
    by_source = {e.source: e for e in summary.entries}
    failed = {os.path.abspath(p) for p, _ in summary.failed}
    rows: dict[str, list] = {k: [] for k in ("x", "y", "groups", "files", "starts", "kind")}
    loaded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    annotations: dict[str, list] = {}
    for f in ts.files:
        src = str(Path(f.path).resolve())
        if src not in by_source:
            if os.path.abspath(f.path) not in failed:  # pragma: no cover - defensive
                summary.failed.append((str(f.path), "not embedded"))
            continue
        if src not in loaded:
            loaded[src] = by_source[src].load()
            if str(f.path) in long:
                loaded[src] = active_rows(str(f.path), *loaded[src], audio, max_windows,
                                          selected)
        if f.begin is not None:  # labelled per recording, below
            annotations.setdefault(src, []).append(f)
            continue
        starts, embs = loaded[src]
        target = np.zeros(len(classes), dtype=np.float32)
        for p in f.positives:
            target[col[p]] = 1.0
        kind = "positive" if f.positives else ("negative" if f.negatives else "background")
        n = len(starts)
        rows["x"].append(embs)
        rows["y"].append(np.tile(target, (n, 1)))
        rows["groups"].append(np.full(n, f.group, dtype=object))
        rows["files"].append(np.full(n, str(f.path), dtype=object))
        rows["starts"].append(starts)
        rows["kind"].append(np.full(n, kind, dtype=object))
    for src, recording in annotations.items():
        starts, embs = loaded[src]
        use = unannotated_negatives == "yes" or (unannotated_negatives == "auto"
                                                 and recording[0].complete)
        aw = annotation_windows(starts, audio.segment_seconds, recording, classes, use)
        for f in aw.unmatched:  # counted nowhere: it trains nothing
            need = min(MIN_ANNOTATION_OVERLAP, f.end - f.begin)
            reason = (f"annotation {f.begin:g}-{f.end:g} s: no {audio.segment_seconds:g}-s "
                      f"window covers {need:g} s of it")
            summary.failed.append((str(f.path), reason))
            if echo is not None:
                echo(f"skipped {f.path}: {reason}")
        n = len(aw.index)
        if not n:
            continue
        rows["x"].append(embs[aw.index])
        rows["y"].append(aw.y)
        rows["groups"].append(np.full(n, recording[0].group, dtype=object))
        rows["files"].append(np.full(n, str(recording[0].path), dtype=object))
        rows["starts"].append(starts[aw.index])
        rows["kind"].append(aw.kind)
    if not rows["x"]:
        raise DatasetError("none of the training files could be read; see error_log.txt in "
                           f"{store}")
    feats = Features(
        np.concatenate(rows["x"]).astype(np.float32), np.concatenate(rows["y"]),
        np.concatenate(rows["groups"]).astype(str), np.concatenate(rows["files"]).astype(str),
        np.concatenate(rows["starts"]), np.concatenate(rows["kind"]).astype(str),
        list(classes), list(summary.failed), selected)
    missing = [c for i, c in enumerate(classes) if not (feats.y[:, i] > 0.5).any()]
    if missing and require_all:
        raise DatasetError(f"no readable windows for {', '.join(missing)}: every file of "
                           "these classes failed (see the error log)")
    return feats


def long_files(paths: list[str], audio: AudioSettings, max_windows: int) -> set[str]:
    """Files whose windows are chosen by activity: with the smart crop (the training
    default) and a cap above 0, those of at least ``LONG_RECORDING_WINDOWS`` windows."""
    if audio.crop_mode != "smart" or max_windows <= 0:
        return set()
    return long_recordings(paths, audio)


def embed_labelled(paths: list[str], long: set[str], store: str | os.PathLike,
                   audio: AudioSettings, engine: eng.EngineSettings, model: EmbeddingModel,
                   progress: bool, echo: Callable[[str], None] | None):
    """``embed_files`` of ``paths`` with ``audio``, except the ``long`` ones, embedded with
    all their windows (``segments``, shared with annotated training and ``edgebird embed``)
    so that ``active_rows`` can choose among them; one summary of both."""
    short = [p for p in paths if p not in long]
    summary = None
    for files, how in ((short, audio), (sorted(long), replace(audio, crop_mode="segments"))):
        if not files:
            continue
        part = embed_files(files, store, how, engine, model, progress=progress, echo=echo)
        if summary is None:
            summary = part
        else:
            summary.entries += part.entries
            summary.failed += part.failed
    return summary


def active_rows(path: str, starts: np.ndarray, embs: np.ndarray, audio: AudioSettings,
                max_windows: int, selected: dict[str, tuple[int, int, int]],
                ) -> tuple[np.ndarray, np.ndarray]:
    """A long recording's windows that hold sound (at most ``max_windows``), booked in
    ``selected`` as (kept, held sound, all) for the report."""
    rows, held = select_windows(path, starts, audio, max_windows)
    selected[path] = (len(rows), held, len(starts))
    return starts[rows], embs[rows]


def windows_per_class(feats: Features) -> dict[str, dict[str, int]]:
    """``{class: {"windows", "recordings"}}`` of the rows as trained (``metrics.json``)."""
    groups = feats.groups_per_class()
    return {c: {"windows": int((feats.y[:, i] > 0.5).sum()), "recordings": groups[c]}
            for i, c in enumerate(feats.classes)}


def window_counts(feats: Features, max_windows: int = DEFAULT_MAX_WINDOWS) -> str:
    """Windows per class and from how many recordings, as trained (after crops, selection
    and skipped files); plus how long recordings were cut down."""
    lines = ["windows per class (as trained):"]
    for c, n in windows_per_class(feats).items():
        lines.append(f"  {c}: {n['windows']} windows from {n['recordings']} recordings")
    for kind in ("background", "negative"):
        n = int((feats.kind == kind).sum())
        if n:
            lines.append(f"  ({kind}): {n} windows from "
                         f"{len(np.unique(feats.groups[feats.kind == kind]))} recordings")
    if feats.selected:
        kept = sum(k for k, _, _ in feats.selected.values())
        held = sum(h for _, h, _ in feats.selected.values())
        total = sum(t for _, _, t in feats.selected.values())
        capped = sum(h > k for k, h, _ in feats.selected.values())
        lines.append(f"  {len(feats.selected)} long recording(s) (>= {LONG_RECORDING_WINDOWS} "
                     f"windows): {kept} of their {total} windows kept, those holding sound "
                     f"({held}), at most {max_windows} per recording (--max-windows-per-"
                     f"recording); {capped} recording(s) hit the cap")
    return "\n".join(lines)


@dataclass(frozen=True)
class AnnotatedWindows:
    """The windows of one annotated recording that train: ``index`` into its windows (in
    time order), their targets ``y`` and ``kind``; ``unmatched``: annotations no window
    belongs to."""

    index: np.ndarray
    y: np.ndarray
    kind: np.ndarray
    unmatched: list[LabelledFile]


def annotation_windows(starts: np.ndarray, segment: float, annotations: list[LabelledFile],
                       classes: list[str], unannotated: bool,
                       cap: int = MAX_UNANNOTATED_PER_RECORDING) -> AnnotatedWindows:
    """Label the windows (``starts``, each ``segment`` s long) of one recording from all its
    ``annotations``, by the rules of the module docstring; ``unannotated``: its unannotated
    time trains as background (at most ``cap`` windows, evenly spread)."""
    col = {c: i for i, c in enumerate(classes)}
    starts = np.asarray(starts, dtype=np.float64)
    y = np.zeros((len(starts), len(classes)), dtype=np.float32)
    belongs_any = np.zeros(len(starts), dtype=bool)
    touched = np.zeros(len(starts), dtype=bool)
    unmatched = []
    for f in annotations:
        assert f.begin is not None and f.end is not None
        overlap = np.minimum(starts + segment, f.end) - np.maximum(starts, f.begin)
        need = min(MIN_ANNOTATION_OVERLAP, f.end - f.begin)
        belongs = overlap >= need - 1e-9
        touched |= overlap > UNANNOTATED_TOLERANCE + 1e-9
        if not belongs.any():
            unmatched.append(f)
            continue
        belongs_any |= belongs
        for p in f.positives:
            y[belongs, col[p]] = 1.0
    positive = y.sum(axis=1) > 0
    free = np.flatnonzero(~touched) if unannotated else np.zeros(0, dtype=int)
    if len(free) > cap:
        free = free[np.unique(np.linspace(0, len(free) - 1, cap).round().astype(int))]
    kind = np.full(len(starts), "", dtype=object)
    kind[belongs_any] = "background"  # a non-event annotation and no species
    kind[positive] = "positive"
    kind[free] = "unannotated"
    index = np.flatnonzero(kind != "")
    return AnnotatedWindows(index, y[index], kind[index], unmatched)


#: Bump when ``synth.noise_window`` changes, so cached noise embeddings are not reused.
NOISE_VERSION = 1


def synthetic_negatives(model: EmbeddingModel, classes: list[str], count: int,
                        seed: int, cache: str | os.PathLike | None = None) -> Features:
    """``count`` embedded noise windows (rain, wind, engine, hiss, quiet) as background rows.

    With ``cache`` (a folder, e.g. the embedding store) the embeddings are kept there, keyed
    by model, seed, count and generator version: they cost seconds to compute and never change.
    """
    from edgebird.synth import NOISE_KINDS

    kinds = [NOISE_KINDS[i % len(NOISE_KINDS)] for i in range(count)]
    fp = model.fingerprint.replace(":", "-")
    path = (Path(cache) / f"synthetic-noise-v{NOISE_VERSION}-{fp}-{seed}-{count}.npy"
            if cache else None)
    if path is not None and path.is_file():
        embs = np.load(path)
    else:
        windows, kinds = noise_windows(count, seed=seed, sr=model.sample_rate)
        embs, _ = model.embed(windows)
        if path is not None:
            import io

            from edgebird.core.files import atomic_write_bytes

            buf = io.BytesIO()
            np.save(buf, embs.astype(np.float32))
            atomic_write_bytes(path, buf.getvalue())
    return Features(
        embs.astype(np.float32), np.zeros((count, len(classes)), dtype=np.float32),
        np.array([f"synthetic:{seed}:{i}" for i in range(count)]),
        np.array([f"<synthetic {k}>" for k in kinds]), np.zeros(count),
        np.full(count, "synthetic"), list(classes))
