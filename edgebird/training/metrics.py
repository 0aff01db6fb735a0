"""Per-class detection metrics and thresholds (numpy + scikit-learn; no TensorFlow).

Scores are probabilities (sigmoid of the logits). Every class is a detector of its own, as
in the field: precision, recall and F1 at 0.5 and at a per-class threshold chosen on data the
model was not evaluated on, AUPRC and AUROC, and the confusion counts at the threshold.
"""

from __future__ import annotations

import numpy as np

from edgebird.heads.base import sigmoid  # noqa: F401 - scores are sigmoid(logits)

THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


def best_thresholds(y: np.ndarray, p: np.ndarray, default: float = 0.5) -> np.ndarray:
    """F1-optimal threshold per class over ``THRESHOLD_GRID``; ``default`` for a class with
    no positive example (nothing to choose from). Ties go to the higher threshold (fewer
    false positives)."""
    out = np.full(y.shape[1], default, dtype=np.float64)
    for c in range(y.shape[1]):
        pos = y[:, c] > 0.5
        if not pos.any():
            continue
        best, best_f1 = default, -1.0
        for t in THRESHOLD_GRID:
            pred = p[:, c] >= t
            tp = np.sum(pred & pos)
            f1 = 2 * tp / (pred.sum() + pos.sum()) if (pred.sum() + pos.sum()) else 0.0
            if f1 >= best_f1:
                best, best_f1 = float(t), f1
        out[c] = best
    return out


def _f1(pos: np.ndarray, pred: np.ndarray) -> float:
    denom = pred.sum() + pos.sum()
    return float(2 * np.sum(pred & pos) / denom) if denom else 0.0


def checked_thresholds(y: np.ndarray, p: np.ndarray, parts: np.ndarray,
                       default: float = 0.5) -> tuple[np.ndarray, dict[int, str]]:
    """``best_thresholds`` on out-of-fold scores, kept per class only where choosing a
    threshold pays off on data it was not chosen on; otherwise ``default`` (0.5).

    The F1-optimal threshold always beats 0.5 on the scores it was chosen on, so that is no
    test. Instead, for each inner part (``parts``: the inner fold of every row) a threshold
    is chosen on the other parts' scores and applied to this part's; pooled over the parts,
    unless that F1 is above the F1 at ``default`` on the same scores, choosing does not pay
    (it overfits the few scores there are, or merely ties) and the class keeps ``default``:
    a tie goes to 0.5 because a threshold moved off 0.5 on a tie is noise that costs on
    new data (on devbirds, keeping ties cost 0.02 macro F1 against 0.5, see TRAINING.md).
    Returns the thresholds and, for each class that fell back, why (its class index -> a
    sentence)."""
    chosen = best_thresholds(y, p, default)
    why: dict[int, str] = {}
    for c in range(y.shape[1]):
        pos = y[:, c] > 0.5
        if not pos.any() or chosen[c] == default:
            continue
        pred = np.zeros(len(pos), dtype=bool)
        for part in np.unique(parts):
            here = parts == part
            t = best_thresholds(y[~here, c:c + 1], p[~here, c:c + 1], default)[0]
            pred[here] = p[here, c] >= t
        f1_chosen, f1_default = _f1(pos, pred), _f1(pos, p[:, c] >= default)
        if f1_chosen <= f1_default:
            chosen[c] = default
            why[c] = (f"a threshold chosen on part of the inner out-of-fold scores did no "
                      f"better on the rest than {default} (F1 {f1_chosen:.3f} vs {f1_default:.3f})")
    return chosen, why


def _prf(y: np.ndarray, pred: np.ndarray) -> tuple[float, float, float, int, int, int, int]:
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    tn = int(np.sum(~pred & ~y))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, tp, fp, tn, fn


def class_metrics(y: np.ndarray, p: np.ndarray, classes: list[str],
                  thresholds: np.ndarray) -> list[dict]:
    """One dict per class plus a first row ``MACRO`` (mean over classes with positives)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    rows = []
    for c, name in enumerate(classes):
        yt = y[:, c] > 0.5
        p5 = _prf(yt, p[:, c] >= 0.5)
        pt = _prf(yt, p[:, c] >= thresholds[c])
        has_both = 0 < yt.sum() < len(yt)
        rows.append({
            "class": name,
            "precision@0.5": p5[0], "recall@0.5": p5[1], "f1@0.5": p5[2],
            "threshold": float(thresholds[c]),
            "precision@thr": pt[0], "recall@thr": pt[1], "f1@thr": pt[2],
            "auprc": float(average_precision_score(yt, p[:, c])) if yt.any() else float("nan"),
            "auroc": float(roc_auc_score(yt, p[:, c])) if has_both else float("nan"),
            "tp": pt[3], "fp": pt[4], "tn": pt[5], "fn": pt[6],
            "positives": int(yt.sum()), "windows": int(len(yt)),
        })
    scored = [r for r in rows if r["positives"] > 0]
    macro = {"class": "MACRO"}
    for key in rows[0]:
        if key == "class":
            continue
        vals = [r[key] for r in scored if np.isfinite(r[key])]  # no "Mean of empty slice"
        if key in ("tp", "fp", "tn", "fn", "positives", "windows"):
            macro[key] = int(sum(r[key] for r in rows))
        else:
            macro[key] = float(np.mean(vals)) if vals else float("nan")
    return [macro] + rows


def false_positive_rate(p: np.ndarray, thresholds: np.ndarray) -> float:
    """Share of windows (that hold none of the classes) on which any class fires."""
    if len(p) == 0:
        return float("nan")
    return float(np.mean((p >= thresholds[None, :]).any(axis=1)))
