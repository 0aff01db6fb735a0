"""Logits → scores → detections: sensitivity, minimum confidence, top-N, merging.

The first piece of the analysis step (issue 5); writers, species lists and the ``analyze``
command build on it. Pure numpy, no model: the same functions serve the CLI, the GUI and the
field recorder.

**Sensitivity.** edgebird follows BirdNET-Analyzer 2.x and ``birdnet`` 1.3: sensitivity S in
[0.5, 1.5] *shifts* the logit, ``score = sigmoid(clip(logit + (S - 1) * 10, -20, 20))``, so
S = 1.25 adds 2.5 to every logit and the slope stays 1. birdnetlib and BirdNET-Pi keep the v1
convention, which *scales* the slope: ``sigmoid(s * logit)`` with ``s = clamp(2 - S, 0.5,
1.5)`` (``slope_sigmoid`` below, for comparison only). The same "1.25" therefore means
different things in different tools; results files name the convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SENSITIVITY_RANGE = (0.5, 1.5)
#: BirdNET-Analyzer's minimum confidence; analyze, segments, the GUI and the recorder use it.
DEFAULT_MIN_CONF = 0.25


def _check_sensitivity(sensitivity: float) -> None:
    lo, hi = SENSITIVITY_RANGE
    if not lo <= sensitivity <= hi:
        raise ValueError(f"sensitivity must be in [{lo}, {hi}], got {sensitivity:g}")


def flat_sigmoid(logits: np.ndarray, sensitivity: float = 1.0) -> np.ndarray:
    """BirdNET-Analyzer 2.x scores: the logit shifted by ``(S - 1) * 10``, clipped to ±20."""
    _check_sensitivity(sensitivity)
    shifted = np.clip(np.asarray(logits, dtype=np.float64) + (sensitivity - 1.0) * 10.0,
                      -20.0, 20.0)
    return 1.0 / (1.0 + np.exp(-shifted))


def slope_sigmoid(logits: np.ndarray, sensitivity: float = 1.0) -> np.ndarray:
    """birdnetlib / BirdNET-Pi (v1) scores: the slope scaled by ``clamp(2 - S, 0.5, 1.5)``."""
    _check_sensitivity(sensitivity)
    slope = float(np.clip(2.0 - sensitivity, 0.5, 1.5))
    return 1.0 / (1.0 + np.exp(-slope * np.asarray(logits, dtype=np.float64)))


@dataclass(frozen=True)
class Detection:
    """One result row; writers take these, never model objects."""

    file: str
    start: float
    end: float
    label: str
    confidence: float


def select(scores: np.ndarray, starts: np.ndarray, ends: np.ndarray, labels: list[str],
           min_conf: float | np.ndarray = DEFAULT_MIN_CONF, top_n: int | None = None,
           allowed: set[str] | frozenset[str] | None = None,
           file: str = "") -> list[Detection]:
    """Detections from per-window scores ``[n_windows, n_labels]``.

    Per window: labels not in ``allowed`` (a species list) are dropped; then either the
    ``top_n`` best labels are kept whatever their score (BNA: top-N bypasses min_conf), or
    every label scoring at least ``min_conf`` (one value, or one per label: a custom
    classifier's thresholds). Sorted by start time, then by confidence.
    """
    conf = np.asarray(min_conf, dtype=np.float64)
    if conf.size == 0 or not ((conf >= 0.0) & (conf <= 1.0)).all():
        raise ValueError(f"minimum confidence must be in [0, 1], got {min_conf}")
    if conf.ndim and conf.shape != (len(labels),):
        raise ValueError(f"{conf.size} thresholds for {len(labels)} labels")
    if top_n is not None and top_n < 1:
        raise ValueError("top-N must be >= 1")
    scores = np.asarray(scores)
    keep = np.ones(len(labels), dtype=bool)
    if allowed is not None:
        keep = np.array([lab in allowed for lab in labels])
    out: list[Detection] = []
    for i in range(len(scores)):
        row = np.where(keep, scores[i], -np.inf)
        if top_n is not None:
            idx = np.argsort(-row, kind="stable")[:top_n]
            idx = idx[np.isfinite(row[idx])]
        else:
            idx = np.flatnonzero(row >= conf)
            idx = idx[np.argsort(-row[idx], kind="stable")]
        out += [Detection(file, float(starts[i]), float(ends[i]), labels[j], float(row[j]))
                for j in idx]
    return sorted(out, key=lambda d: (d.start, -d.confidence))


def merge_consecutive(detections: list[Detection], max_hits: int = 1) -> list[Detection]:
    """Join runs of same-label detections that touch or overlap (end >= next start), at most
    ``max_hits`` per run; a run's confidence is the mean of its top three (BNA's rule).
    ``max_hits=1`` changes nothing."""
    if max_hits < 1:
        raise ValueError("merge consecutive must be >= 1")
    if max_hits == 1:
        return list(detections)
    by_key: dict[tuple[str, str], list[Detection]] = {}
    for d in sorted(detections, key=lambda d: (d.file, d.label, d.start)):
        by_key.setdefault((d.file, d.label), []).append(d)
    merged: list[Detection] = []
    for dets in by_key.values():
        run = [dets[0]]
        for d in dets[1:]:
            if run[-1].end >= d.start and len(run) < max_hits:
                run.append(d)
            else:
                merged.append(_join(run))
                run = [d]
        merged.append(_join(run))
    return sorted(merged, key=lambda d: (d.file, d.start, -d.confidence))


def _join(run: list[Detection]) -> Detection:
    top3 = sorted((d.confidence for d in run), reverse=True)[:3]
    return Detection(run[0].file, run[0].start, run[-1].end, run[0].label,
                     float(np.mean(top3)))
