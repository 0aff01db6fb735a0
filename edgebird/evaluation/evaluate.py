"""The ``evaluate`` command: result tables (or audio analyzed first) against annotations."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.core.labels import read_thresholds
from edgebird.core.scores import DEFAULT_MIN_CONF
from edgebird.core.writers.formats import MARK
from edgebird.core.writers.readers import read_results
from edgebird.evaluation.matching import match
from edgebird.evaluation.metrics import ClassCurve
from edgebird.evaluation.truth import AMBIGUOUS, LabelMap, Truth, read_truth
from edgebird.options import opt

#: The confidence floor when evaluate analyzes audio itself (the curve needs low scores).
ANALYZE_MIN_CONF = 0.01


class EvaluationError(Exception):
    """Inputs could not be used (exit 1); the message says which and why."""


@dataclass(frozen=True)
class EvaluateSettings:
    """How detections are judged. Every default is here once (the CLI shows them)."""

    min_overlap: float = field(default=0.5, metadata=opt(
        "--min-overlap", help="seconds a detection must overlap an annotation of its class "
        "to match it (the whole annotation when it is shorter); BirdNET-Analyzer's default"))
    min_conf: float = field(default=DEFAULT_MIN_CONF, metadata=opt(
        "--min-conf", help="threshold of every class without one in --thresholds"))
    thresholds: str | None = field(default=None, metadata=opt(
        "--thresholds", metavar="CSV", help="per-class thresholds (a model's _Thresholds.csv)"))
    target_precision: float = field(default=0.9, metadata=opt(
        "--target-precision", help="find each class's lowest threshold reaching this precision"))
    write_thresholds: str | None = field(default=None, metadata=opt(
        "--write-thresholds", metavar="PATH",
        help="write those thresholds as a Class,Threshold file (opt-in)"))
    classifier: str | None = field(default=None, metadata=opt(
        "--classifier", metavar="MODEL",
        help="analyze the inputs (audio) with this classifier first (see also --analyze)"))

    def __post_init__(self) -> None:
        if not self.min_overlap > 0:
            raise ValueError(f"--min-overlap must be > 0 s, got {self.min_overlap:g}")
        for name in ("min_conf", "target_precision"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {v:g}")


@dataclass
class Evaluation:
    """What ``evaluate`` measured, for the report."""

    curves: dict[str, ClassCurve]
    thresholds: dict[str, float]
    threshold_source: dict[str, str]
    duration_source: str
    hours: float
    settings: EvaluateSettings
    tables: int = 0
    detections: int = 0
    not_evaluated: int = 0  # detections of classes/recordings without ground truth
    unmatched_files: int = 0  # recordings in tables that no annotation/absent list names
    ambiguous: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # annotated, no table nor detection
    failed: list[str] = field(default_factory=list)  # tables that could not be read


def _tables(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """``(table, root)`` for every result table named or under a folder named (one per
    recording, as ``segments`` chooses)."""
    from edgebird.pipeline.segments import find_tables

    out = []
    for given in inputs:
        root = Path(given)
        try:
            found, _ = find_tables(root)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        out += [(t, root if root.is_dir() else root.parent) for t in found]
    if not out:
        raise EvaluationError(f"no result tables in {', '.join(map(str, inputs))}")
    return out


def _table_recording(table: Path, root: Path) -> str:
    """The recording a per-file table is named after (its path before ``.BirdNET.``)."""
    rel = table.relative_to(root) if table.is_relative_to(root) else Path(table.name)
    return rel.as_posix().split(MARK, 1)[0]


def _durations(truth: Truth, keys: set[str], audio: str | os.PathLike | None,
               ends: dict[str, float]) -> tuple[dict[str, float], str]:
    """Seconds of each recording: from the audio files under ``audio``, else the tables'
    extent (the last annotation or detection end, a lower bound of the real length)."""
    if audio is None:
        return ({k: max(truth.extent(k), ends.get(k, 0.0)) for k in keys},
                "the tables' extent (end of the last annotation or detection; a lower bound, "
                "so false positives per hour are upper bounds)")
    from edgebird.audio import AudioError, find_audio_files, probe

    files, _ = find_audio_files([audio])
    index = truth.index()
    out = {}
    for path, _ in files:
        key = index.find(path)
        if key in keys and key not in out:
            try:
                out[key] = probe(path).duration
            except AudioError as exc:
                raise EvaluationError(f"cannot read {path}: {exc}") from None
    lacking = sorted(keys - set(out))
    if lacking:
        raise EvaluationError(f"{len(lacking)} evaluated recordings have no audio file under "
                              f"{audio}, e.g. {lacking[0]}")
    return out, f"the audio files under {audio}"


def class_thresholds(classes: list[str], s: EvaluateSettings
                     ) -> tuple[dict[str, float], dict[str, str]]:
    """Each class's threshold and where it came from (the thresholds file or --min-conf)."""
    given: dict[str, float] = {}
    if s.thresholds:
        try:
            given = read_thresholds(s.thresholds)
        except OSError as exc:
            raise EvaluationError(f"cannot read {s.thresholds}: {exc}") from None
    labels = LabelMap(classes)
    mapped = {labels(k): v for k, v in given.items() if labels(k)}
    return ({c: mapped.get(c, s.min_conf) for c in classes},
            {c: "thresholds file" if c in mapped else "--min-conf" for c in classes})


def evaluate_tables(inputs: list[str | os.PathLike], annotations: list[str | os.PathLike],
                    settings: EvaluateSettings = EvaluateSettings(),
                    absent: list[str | os.PathLike] = (),
                    audio: str | os.PathLike | None = None,
                    audio_root: str | os.PathLike | None = None) -> Evaluation:
    """Judge every detection in the result tables ``inputs`` against the annotations."""
    from edgebird.training.dataset import DatasetError

    try:
        truth = read_truth(list(annotations), list(absent), audio_root)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    classes = truth.all_classes
    if not classes:
        raise EvaluationError("the annotations name no class (only noise/background rows)")
    index, labels = truth.index(), LabelMap(classes)
    evaluated = {c: truth.evaluated_for(c) for c in classes}
    found: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    ends: dict[str, float] = defaultdict(float)
    ev = Evaluation({}, {}, {}, "", 0.0, settings)
    seen, unmatched, ambiguous = set(), set(), set()
    for table, root in _tables(inputs):
        try:
            _, dets = read_results(table)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            ev.failed.append(f"{table}: {exc}")
            continue
        ev.tables += 1
        own = _table_recording(table, root)
        k = index.find(own)
        if k not in (None, AMBIGUOUS):
            seen.add(k)
        for d in dets:
            ev.detections += 1
            key = index.find(d.file) if d.file else k
            if key is None or key == AMBIGUOUS:
                (ambiguous if key == AMBIGUOUS else unmatched).add(d.file or own)
                ev.not_evaluated += 1
                continue
            seen.add(key)
            cls = labels(d.label)
            if cls is None or key not in evaluated[cls]:
                ev.not_evaluated += 1
                continue
            found[(cls, key)].append((d.start, d.end, d.confidence))
            ends[key] = max(ends[key], d.end)
    keys = set().union(*evaluated.values())
    durations, ev.duration_source = _durations(truth, keys, audio, ends)
    ev.hours = sum(durations.values()) / 3600
    ev.unmatched_files, ev.ambiguous = len(unmatched), sorted(ambiguous)
    ev.missing = sorted(truth.annotated - seen)
    ev.thresholds, ev.threshold_source = class_thresholds(classes, settings)
    for cls in classes:
        scores, outcomes, positives = [], [], 0
        for key in evaluated[cls]:
            anns = truth.annotations.get(key, {}).get(cls, [])
            dets = found.get((cls, key), [])
            positives += len(anns)
            scores += [d[2] for d in dets]
            outcomes += match(dets, anns, settings.min_overlap)
        hours = sum(durations[k] for k in evaluated[cls]) / 3600
        ev.curves[cls] = ClassCurve(cls, np.asarray(scores, float),
                                    np.asarray(outcomes, np.int8), positives, hours)
    return ev


def analyze_first(inputs: list[str | os.PathLike], out: Path, classifier: str | None,
                  progress: bool = True, model=None, echo=print) -> tuple[Path, bool]:
    """Analyze the audio ``inputs`` (BirdNET, ``classifier``, or an ``EmbeddingModel``
    given as ``model``) into ``out/results`` with a low floor (0.01), so the sweep sees low
    scores. ``(results folder, any file failed)``."""
    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files

    results = out / "results"
    settings = AnalyzeSettings(min_conf=ANALYZE_MIN_CONF, classifier=classifier)
    summary = analyze_files(list(inputs), results, settings, model=model, progress=progress,
                            echo=echo)
    echo(summary.text())
    return results, bool(summary.failed)
