"""Pseudo-labelling: train on a few labelled windows, label the confident part of an unlabelled
pool with the model's own predictions, retrain, and see whether held-out scores improve.

The unlabelled pool of a split is what a user would have: the training side's windows whose
labels we hide (so the pseudo labels' precision can be measured), windows of the user's own
unlabelled recordings (``--unlabelled``; truth unknown), and synthetic noise windows (rain,
wind, engines: the pool must not turn noise into birds). Per round and class, windows
scoring at least ``threshold`` for that class, and higher for it than for any other, are
added with that label, at most ``cap`` per class (the most confident first), each weighing
``weight`` in the loss against 1 for a labelled window. ``pos_weight`` weighs positive
examples against negatives in the loss (>1: sensitivity, <1: specificity), so the same run
shows the trade-off the loss can buy.

Round 0 is the model without pseudo labels, on the same split and draw: every later round is
compared with it, paired per repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgebird.experiments.fewshot import Noise, Split, evaluate
from edgebird.heads import Head
from edgebird.options import opt


@dataclass(frozen=True)
class PseudoSettings:
    shots: int = field(default=2, metadata=opt(
        "--pseudo-shots", help="labelled windows per class"))
    rounds: int = field(default=3, metadata=opt("--rounds", help="pseudo-labelling rounds"))
    threshold: float = field(default=0.9, metadata=opt(
        "--threshold", help="score a window needs to be pseudo-labelled"))
    cap: int = field(default=10, metadata=opt(
        "--cap", help="new labels per class and round at most"))
    weight: float = field(default=0.5, metadata=opt(
        "--pseudo-weight", help="loss weight of a pseudo-labelled window (labelled: 1)"))
    pos_weights: tuple[float, ...] = field(default=(1.0,), metadata=opt(
        "--pos-weight", help="loss weight of positives against negatives, one run each: >1 "
                             "favours sensitivity, <1 specificity"))

    def __post_init__(self) -> None:
        checks = [
            (self.shots >= 1, "shots must be >= 1"),
            (self.rounds >= 1, "rounds must be >= 1"),
            (0.0 < self.threshold < 1.0, "the pseudo-label threshold must be in (0, 1)"),
            (self.cap >= 1, "the per-class cap must be >= 1"),
            (0.0 < self.weight <= 1.0, "the pseudo-label weight must be in (0, 1]"),
            (all(w > 0 for w in self.pos_weights), "positive-class weights must be > 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


@dataclass(frozen=True)
class Pool:
    """Unlabelled rows and, where known, their truth (NaN rows: unknown, e.g. user audio)."""

    x: np.ndarray
    truth: np.ndarray  # [n, classes] 0/1 or NaN

    def __len__(self) -> int:
        return len(self.x)

    def concat(self, other: Pool) -> Pool:
        return Pool(np.concatenate([self.x, other.x]), np.concatenate([self.truth, other.truth]))


def split_pool(x: np.ndarray, y: np.ndarray, split: Split, labelled: np.ndarray) -> Pool:
    """The training side's windows that were not drawn as labelled shots, labels hidden."""
    hidden = np.setdiff1d(split.pool, labelled)
    return Pool(x[hidden], y[hidden].astype(float))


def choose(p: np.ndarray, taken: np.ndarray, threshold: float, cap: int) -> list[tuple[int, int]]:
    """(pool row, class) pairs to add: per class the rows scoring >= threshold for it, and
    for it more than for any other class, not yet taken, the ``cap`` most confident."""
    best = p.argmax(axis=1)
    picks = []
    for c in range(p.shape[1]):
        ok = np.flatnonzero(~taken & (best == c) & (p[:, c] >= threshold))
        for i in ok[np.argsort(-p[ok, c], kind="stable")][:cap]:
            picks.append((int(i), c))
    return picks


def run_rounds(make: Callable[[], Head], x: np.ndarray, y: np.ndarray, split: Split,
               noise: Noise | None, classes: Sequence[str], pool: Pool,
               s: PseudoSettings) -> list[dict]:
    """Round 0 (labelled only) to ``s.rounds``: one result row per round."""
    labelled = split.draw(s.shots)
    cols = split.trained
    truth = pool.truth[:, cols]  # the pool's truth is over all classes
    taken = np.zeros(len(pool), dtype=bool)
    added: list[tuple[int, int]] = []
    rows = []
    for rnd in range(s.rounds + 1):
        extra = None
        if added:
            idx = np.array([i for i, _ in added])
            ey = np.zeros((len(added), len(cols)), dtype=np.float32)
            ey[np.arange(len(added)), [c for _, c in added]] = 1.0
            extra = (pool.x[idx], ey, np.full(len(added), s.weight))
        head = make()
        row = evaluate(head, x, y, split, labelled, noise, classes, extra)
        known = [(i, c) for i, c in added if np.isfinite(truth[i]).all()]
        correct = sum(1 for i, c in known if truth[i, c] > 0.5)
        rows.append({"round": rnd, "pseudo_labels": len(added), "pseudo_known": len(known),
                     "pseudo_precision": correct / len(known) if known else float("nan"),
                     **row})
        if rnd == s.rounds or not len(pool):
            continue
        picks = choose(head.scores(pool.x), taken, s.threshold, s.cap)
        for i, _ in picks:
            taken[i] = True
        added.extend(picks)
    return rows
