"""Few-shot evaluation: repeated grouped splits, nested draws of k shots, paired comparisons.

The protocol (what ``edgebird experiment curve`` runs), chosen so that numbers are honest and
comparisons are fair:

1. **Splits by recording.** For each repeat, a share of every class's recordings
   (``test_fraction``, at least one) is held out for testing; the rest is the training pool.
   A recording's windows are never on both sides. A different random split per repeat.
2. **Open set.** In each repeat one class (in turn) is left out of training altogether: its
   windows measure how often the model fires on a species it never saw (the false positive
   users complain about most). Metrics are over the other classes.
3. **Nested draws.** Per class, the training pool's windows are put in a random order that
   visits every recording once before any twice; k shots are the first k. So the 4-shot set
   contains the 2-shot set (a learning curve, not independent points), and k shots come from
   as many different recordings as possible. A shot count above what the smallest class can
   give is dropped, and said so.
4. **Same splits for everything.** Splits depend on the data and the seed only, so every
   backbone and head sees the same draws, and their differences are paired per repeat.
5. **Noise.** Synthetic noise windows (rain, wind, engines, hiss) join training as background
   in every fit; a different set, never trained on, measures false positives on noise.

Scores are thresholded at 0.5 for F1, sensitivity and specificity (``heads`` makes 0.5 each
head's own decision point); AUPRC and AUROC need no threshold. Means come with 95 % t
intervals over repeats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from edgebird.heads import Head
from edgebird.training.features import Features
from edgebird.training.metrics import class_metrics, false_positive_rate

#: The metrics every evaluation reports (macro over classes; false positive rates over windows).
METRICS = ("f1", "auprc", "auroc", "sensitivity", "specificity", "noise_fp", "unseen_fp")


@dataclass(frozen=True)
class Split:
    """One repeat: test rows, the training pool's draw order per class, the unseen class."""

    repeat: int
    test: np.ndarray  # row indices (without the unseen class's rows)
    pool: np.ndarray  # training-pool rows (without the unseen class's rows)
    background: np.ndarray  # pool rows that are background (always trained on)
    order: tuple[np.ndarray, ...]  # per class: pool rows with that label, in draw order
    unseen: int | None  # class left out of training, or None
    unseen_rows: np.ndarray  # every window of the unseen class (and of no other class)

    @property
    def trained(self) -> list[int]:
        """Class columns the heads are trained on."""
        return [c for c in range(len(self.order)) if c != self.unseen]

    def available(self) -> int:
        """Largest shot count every trained class can give."""
        return min(len(self.order[c]) for c in self.trained)

    def draw(self, k: int) -> np.ndarray:
        """Training rows for k shots per class (nested in k), plus the pool's background."""
        rows = [self.order[c][:k] for c in self.trained]
        return np.unique(np.concatenate([*rows, self.background])).astype(int)


def _group_strata(feats: Features) -> tuple[np.ndarray, np.ndarray]:
    """Every recording and its stratum (its most common label combination; ties: the first
    in sorted order). One pass over the rows, so large archives cost no more than small."""
    from collections import Counter

    counts = Counter(zip(feats.groups.tolist(), feats.strata().tolist(), strict=True))
    best: dict[str, tuple[int, str]] = {}
    for (g, s), n in sorted(counts.items()):
        if n > best.get(g, (0, ""))[0]:
            best[g] = (n, s)
    groups = np.array(sorted(best))
    return groups, np.array([best[g][1] for g in groups])


def make_splits(feats: Features, repeats: int, test_fraction: float = 0.3, seed: int = 0,
                open_set: bool = True) -> list[Split]:
    """``repeats`` grouped splits (see the module docstring). Refuses data in which a class
    has fewer than two recordings (one for training, one for testing)."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("the test fraction must be between 0 and 1")
    n_classes = len(feats.classes)
    pos = feats.y > 0.5
    per_class = {c: len(np.unique(feats.groups[pos[:, c]])) for c in range(n_classes)}
    short = [feats.classes[c] for c, n in per_class.items() if n < 2]
    if short:
        raise ValueError("few-shot curves need at least 2 recordings per class (one to train "
                         f"on, one to test on); too few: {', '.join(short)}")
    groups, strata = _group_strata(feats)
    rng = np.random.default_rng(seed)
    open_set = open_set and n_classes >= 3
    start = int(rng.integers(n_classes))  # the unseen class: every class in turn from here
    splits = []
    for r in range(repeats):
        test_groups = []
        for s in np.unique(strata):
            members = rng.permutation(groups[strata == s])
            if s == "" or len(members) < 2:  # background recordings, or a lone combination
                n_test = int(round(test_fraction * len(members)))
            else:
                n_test = min(max(1, int(round(test_fraction * len(members)))), len(members) - 1)
            test_groups.extend(members[:n_test])
        is_test = np.isin(feats.groups, test_groups)
        unseen = (start + r) % n_classes if open_set else None
        has_unseen = pos[:, unseen] if unseen is not None else np.zeros(len(feats), bool)
        only_unseen = has_unseen & (pos.sum(axis=1) == 1)
        pool = np.flatnonzero(~is_test & ~has_unseen)
        test = np.flatnonzero(is_test & ~has_unseen)
        background = pool[~pos[pool].any(axis=1)]
        order = tuple(_draw_order(pool[pos[pool, c]], feats.groups, rng)
                      for c in range(n_classes))
        splits.append(Split(r, test, pool, background, order, unseen,
                            np.flatnonzero(only_unseen)))
    return splits


def _draw_order(rows: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rows in an order that takes one window of every recording before a second of any."""
    by_group: dict[str, list[int]] = {}
    for i in rng.permutation(rows):
        by_group.setdefault(groups[i], []).append(int(i))
    lists = [by_group[g] for g in rng.permutation(sorted(by_group))]
    out = []
    for level in range(max((len(v) for v in lists), default=0)):
        out.extend(v[level] for v in lists if level < len(v))
    return np.array(out, dtype=int)


def usable_shots(splits: Sequence[Split], shots: Sequence[int]) -> tuple[list[int], int]:
    """The requested shot counts the data can give in every split, and that limit; a count
    above it is replaced by the limit itself (the curve then ends at "all the data has")."""
    limit = min(s.available() for s in splits)
    usable = {k for k in shots if 1 <= k <= limit}
    if any(k > limit for k in shots) and limit >= 1:
        usable.add(limit)
    return sorted(usable), limit


@dataclass(frozen=True)
class Noise:
    """Synthetic noise rows: ``train`` joins every fit as background; ``eval`` measures
    false positives on noise and is never trained on."""

    train: np.ndarray
    eval: np.ndarray


def evaluate(head: Head, x: np.ndarray, y: np.ndarray, split: Split, train_rows: np.ndarray,
             noise: Noise | None, classes: Sequence[str],
             extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> dict:
    """Fit ``head`` on ``train_rows`` (+ noise, + ``extra`` = (x, y, weights) rows such as
    pseudo labels) and score the split's test rows: one result row of ``METRICS``."""
    cols = split.trained
    xs, ys = [x[train_rows]], [y[train_rows][:, cols]]
    weights = [np.ones(len(train_rows))]
    if noise is not None and len(noise.train):
        xs.append(noise.train)
        ys.append(np.zeros((len(noise.train), len(cols)), dtype=np.float32))
        weights.append(np.ones(len(noise.train)))
    if extra is not None and len(extra[0]):
        xs.append(extra[0])
        ys.append(extra[1])
        weights.append(extra[2])
    w = np.concatenate(weights)
    t0 = time.perf_counter()
    head.fit(np.concatenate(xs), np.concatenate(ys), None if np.all(w == 1) else w)
    fit_seconds = time.perf_counter() - t0
    p = head.scores(x[split.test])
    rows = class_metrics(y[split.test][:, cols], p, [classes[c] for c in cols],
                         np.full(len(cols), 0.5))
    scored = [r for r in rows[1:] if r["positives"] > 0]
    spec = [r["tn"] / (r["tn"] + r["fp"]) for r in scored if r["tn"] + r["fp"]]
    half = np.full(len(cols), 0.5)
    out = {
        "f1": rows[0]["f1@thr"], "auprc": rows[0]["auprc"], "auroc": rows[0]["auroc"],
        "sensitivity": rows[0]["recall@thr"],
        "specificity": float(np.mean(spec)) if spec else float("nan"),
        "noise_fp": (false_positive_rate(head.scores(noise.eval), half)
                     if noise is not None and len(noise.eval) else float("nan")),
        "unseen_fp": (false_positive_rate(head.scores(x[split.unseen_rows]), half)
                      if len(split.unseen_rows) else float("nan")),
        "unseen_class": classes[split.unseen] if split.unseen is not None else "",
        "train_windows": int(len(train_rows)), "test_windows": int(len(split.test)),
        "fit_seconds": fit_seconds,
    }
    return out


@dataclass(frozen=True)
class Candidate:
    """One thing to compare: features from ``backbone`` (a name, for the tables) fed to the
    head ``head``, built fresh per fit by ``make``."""

    backbone: str
    head: str
    make: Callable[[int], Head]  # seed -> a fresh head


def learning_curve(features: dict[str, Features], noise: dict[str, Noise | None],
                   candidates: Sequence[Candidate], splits: Sequence[Split],
                   shots: Sequence[int], echo: Callable[[str], None] = print) -> list[dict]:
    """Every candidate at every shot count on every split: one row per fit."""
    rows = []
    for cand in candidates:
        feats = features[cand.backbone]
        t0 = time.perf_counter()
        for split in splits:
            for k in shots:
                head = cand.make(split.repeat)
                row = evaluate(head, feats.x, feats.y, split, split.draw(k),
                               noise.get(cand.backbone), feats.classes)
                rows.append({"backbone": cand.backbone, "head": cand.head, "shots": k,
                             "repeat": split.repeat, **row})
        mine = [r for r in rows if r["backbone"] == cand.backbone and r["head"] == cand.head]
        best = max(mine, key=lambda r: r["shots"])
        echo(f"{cand.backbone} + {cand.head}: {len(mine)} fits in "
             f"{time.perf_counter() - t0:.1f} s; at {best['shots']} shots macro F1 "
             f"{np.mean([r['f1'] for r in mine if r['shots'] == best['shots']]):.3f}")
    return rows


def mean_ci(values: Sequence[float], level: float = 0.95,
            bounds: tuple[float, float] | None = None) -> tuple[float, float, float]:
    """Mean and a t interval over repeats (NaNs dropped; one value: no interval), clipped to
    ``bounds`` for a metric that cannot leave them (a score of 1.02 means nothing)."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return m, lo, hi


def summarise(rows: Sequence[dict], keys: Sequence[str] = ("backbone", "head", "shots"),
              metrics: Sequence[str] = METRICS) -> list[dict]:
    """Mean and 95 % interval of every metric per combination of ``keys`` (intervals of the
    rates in ``METRICS`` clipped to [0, 1])."""
    combos: dict[tuple, list[dict]] = {}
    for r in rows:
        combos.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for combo, members in combos.items():
        row = dict(zip(keys, combo, strict=True))
        row["repeats"] = len(members)
        for m in metrics:
            mean, lo, hi = mean_ci([r[m] for r in members],
                                   bounds=(0.0, 1.0) if m in METRICS else None)
            row[m], row[m + "_lo"], row[m + "_hi"] = mean, lo, hi
        out.append(row)
    return out


def paired_difference(rows: Sequence[dict], a: dict, b: dict, metric: str = "f1",
                      by: Sequence[str] = ("shots",)) -> list[dict]:
    """``a`` minus ``b`` (each a filter such as ``{"backbone": "birdnet-fusion", "head":
    "svm-linear"}``) per value of ``by``, paired on the repeat: mean and 95 % interval.
    An interval that straddles 0 means no clear difference."""
    def pick(f: dict) -> dict[tuple, float]:
        return {(*(r[k] for k in by), r["repeat"]): r[metric] for r in rows
                if all(r[k] == v for k, v in f.items())}

    pa, pb = pick(a), pick(b)
    out: dict[tuple, list[float]] = {}
    for key in sorted(set(pa) & set(pb)):
        out.setdefault(key[:-1], []).append(pa[key] - pb[key])
    result = []
    for key, diffs in out.items():
        mean, lo, hi = mean_ci(diffs)
        result.append({**dict(zip(by, key, strict=True)), "diff": mean, "lo": lo, "hi": hi,
                       "pairs": len(diffs)})
    return result
