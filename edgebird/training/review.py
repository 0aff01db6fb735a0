"""Reviewing clips and calibrating scores: which score gives the precision you need?

``segments`` cuts clips named ``<conf>_<n>_<file>_<start>s_<end>s.wav`` into one folder per
species. A reviewer marks each clip right or wrong, which moves it into ``Positive/`` or
``Negative/`` inside its species folder (BirdNET-Analyzer's Review tab does the same, so folders
reviewed there work here). ``calibrate`` then fits BNA's logistic regression of P(correct)
against the confidence (scikit-learn, ``C=55``) and solves it for the confidence at which a
detection is right with a chosen probability: a per-species threshold backed by the user's own
ears instead of a guess.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POSITIVE, NEGATIVE = "Positive", "Negative"
_CONF = re.compile(r"^(\d+(?:\.\d+)?)_")
#: clips of ``segments`` (WAV) and of a field recorder brought home by ``collect`` (FLAC)
CLIP_SUFFIXES = (".wav", ".flac")


def _clips(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.suffix.lower() in CLIP_SUFFIXES
            and _CONF.match(p.name)] if folder.is_dir() else []


def clip_confidence(path: str | os.PathLike) -> float:
    """The confidence a clip was cut at, from its name (``0.873_1_rec_3.00s_6.00s.wav``)."""
    m = _CONF.match(Path(path).name)
    if not m:
        raise ValueError(f"{Path(path).name}: not a clip name from 'segments' (<conf>_<n>_...)")
    return float(m.group(1))


def pending(species_dir: str | os.PathLike) -> list[Path]:
    """Clips of a species folder not reviewed yet, most confident first."""
    folder = Path(species_dir)
    clips = _clips(folder)
    return sorted(clips, key=lambda p: (-clip_confidence(p), p.name))


def mark(clip: str | os.PathLike, correct: bool) -> Path:
    """Move a clip into ``Positive/`` or ``Negative/`` beside it; returns the new path.
    Marking an already-marked clip moves it to the other verdict (an undo)."""
    clip = Path(clip)
    species_dir = clip.parent.parent if clip.parent.name in (POSITIVE, NEGATIVE) \
        else clip.parent
    dest = species_dir / (POSITIVE if correct else NEGATIVE) / clip.name
    dest.parent.mkdir(exist_ok=True)
    os.replace(clip, dest)
    return dest


def unmark(clip: str | os.PathLike) -> Path:
    """Put a reviewed clip back among the pending ones."""
    clip = Path(clip)
    if clip.parent.name not in (POSITIVE, NEGATIVE):
        return clip
    dest = clip.parent.parent / clip.name
    os.replace(clip, dest)
    return dest


def reviewed(species_dir: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(confidences, correct)`` of every reviewed clip in a species folder."""
    folder = Path(species_dir)
    conf, ok = [], []
    for verdict, value in ((POSITIVE, 1), (NEGATIVE, 0)):
        for p in sorted(_clips(folder / verdict)):
            conf.append(clip_confidence(p))
            ok.append(value)
    return np.array(conf, dtype=float), np.array(ok, dtype=int)


@dataclass(frozen=True)
class Calibration:
    """P(correct | confidence) = sigmoid(intercept + slope * confidence)."""

    intercept: float
    slope: float
    n_positive: int
    n_negative: int

    def probability(self, confidence: np.ndarray | float) -> np.ndarray:
        z = self.intercept + self.slope * np.asarray(confidence, dtype=float)
        return 1.0 / (1.0 + np.exp(-z))

    def threshold(self, precision: float) -> float | None:
        """The confidence at which P(correct) reaches ``precision``; None if no confidence
        in [0, 1] does (the detector is too unreliable, or scores do not rank correctness)."""
        if not 0.0 < precision < 1.0:
            raise ValueError("precision must be in (0, 1)")
        if self.slope <= 0:
            return None
        t = (np.log(precision / (1.0 - precision)) - self.intercept) / self.slope
        if t > 1.0:
            return None
        return float(max(t, 0.0))


def calibrate(confidences: np.ndarray, correct: np.ndarray) -> Calibration:
    """BNA's Review-tab fit. Needs at least one right and one wrong clip."""
    from sklearn.linear_model import LogisticRegression

    conf = np.asarray(confidences, dtype=float).reshape(-1, 1)
    y = np.asarray(correct, dtype=int)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"calibration needs clips marked right and wrong (have {n_pos} right, "
                         f"{n_neg} wrong); review more clips")
    model = LogisticRegression(C=55).fit(conf, y)
    return Calibration(float(model.intercept_[0]), float(model.coef_[0, 0]), n_pos, n_neg)


def calibrate_folder(segments_dir: str | os.PathLike,
                     precisions: tuple[float, ...] = (0.85, 0.9, 0.95, 0.99)) -> list[dict]:
    """One row per reviewed species folder: counts and the threshold for each precision."""
    rows = []
    for species in sorted(p for p in Path(segments_dir).iterdir() if p.is_dir()):
        conf, ok = reviewed(species)
        row: dict = {"species": species.name, "right": int(ok.sum()),
                     "wrong": int(len(ok) - ok.sum())}
        try:
            cal = calibrate(conf, ok)
        except ValueError as exc:
            row["note"] = str(exc)
            rows.append(row)
            continue
        for p in precisions:
            t = cal.threshold(p)
            row[f"threshold@{p:g}"] = "" if t is None else round(t, 3)
        rows.append(row)
    return rows
