"""Metrics of one class from its matched detections: counts at a threshold, the curve over all
thresholds, average precision and the threshold that reaches a target precision.

A value that was not measured is ``None``, never 0: precision without a detection above the
threshold, recall/F1/AP without an annotation ("no positives"), false positives per hour
without audio in which the class was evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgebird.evaluation.matching import DUPLICATE, TP

#: The thresholds of the sweep table and plot.
SWEEP = tuple(round(0.05 * i, 2) for i in range(1, 20))


@dataclass(frozen=True)
class Counts:
    """Counts and rates of one class at one threshold."""

    threshold: float
    tp: int
    fp: int
    fn: int | None  # None: no annotations
    duplicates: int
    precision: float | None
    recall: float | None
    f1: float | None
    fp_per_hour: float | None


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


@dataclass
class ClassCurve:
    """One class: detections' scores and outcomes, annotation count and evaluated hours."""

    label: str
    scores: np.ndarray  # float, the detections' confidences
    outcomes: np.ndarray  # int8, TP / FP / DUPLICATE
    positives: int  # annotations of the class
    hours: float  # audio in which the class was evaluated

    def __post_init__(self) -> None:
        keep = self.outcomes != DUPLICATE
        order = np.argsort(-self.scores[keep], kind="stable")
        s, o = self.scores[keep][order], self.outcomes[keep][order]
        # distinct thresholds (descending) and cumulative counts at each: score >= t
        last = np.r_[s[1:] != s[:-1], True] if s.size else np.zeros(0, bool)
        self._t = s[last]
        self._tp = np.cumsum(o == TP)[last]
        self._fp = np.cumsum(o != TP)[last]
        self._dup = np.sort(self.scores[~keep])

    @property
    def has_positives(self) -> bool:
        return self.positives > 0

    def at(self, threshold: float) -> Counts:
        """Counts of the detections scoring at least ``threshold``."""
        k = int(np.searchsorted(-self._t, -threshold, side="right"))  # _t[:k] >= threshold
        tp = int(self._tp[k - 1]) if k else 0
        fp = int(self._fp[k - 1]) if k else 0
        dup = int(self._dup.size - np.searchsorted(self._dup, threshold, side="left"))
        p = _ratio(tp, tp + fp)
        r = _ratio(tp, self.positives)
        f1 = None
        if r is not None:
            f1 = 0.0 if tp == 0 else 2 * p * r / (p + r)
        return Counts(threshold, tp, fp, self.positives - tp if self.has_positives else None,
                      dup, p, r, f1, _ratio(fp, self.hours))

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(thresholds, precision, recall)`` at every distinct score (descending); recall
        is NaN without positives."""
        prec = self._tp / np.maximum(self._tp + self._fp, 1)
        rec = self._tp / self.positives if self.has_positives else np.full(self._t.size, np.nan)
        return self._t, prec, rec

    def average_precision(self, threshold: float = 0.0) -> float | None:
        """Σ (R_i − R_{i−1}) P_i over the distinct thresholds ≥ ``threshold`` (scikit-learn's
        step formula; recall the tables never reach adds nothing)."""
        if not self.has_positives:
            return None
        t, p, r = self.curve()
        keep = t >= threshold
        p, r = p[keep], r[keep]
        return float(np.sum(np.diff(np.r_[0.0, r]) * p))

    def threshold_for(self, target: float) -> Counts | None:
        """The counts at the lowest threshold whose precision reaches ``target`` (the most
        recall at that precision), with at least one true positive; None if none does."""
        t, p, _ = self.curve()
        ok = np.flatnonzero((p >= target - 1e-12) & (self._tp > 0))
        return self.at(float(t[ok[-1]])) if ok.size else None


def macro(values: list[float | None]) -> float | None:
    """Mean of the measured values (None if none was)."""
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None
