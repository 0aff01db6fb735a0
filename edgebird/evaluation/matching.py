"""The matching rule: which detections are true positives, false positives or duplicates.

Per recording and class, detections are taken in order of score (highest first; ties by start
time). A detection is a **true positive** when it overlaps a not yet matched annotation of its
class by at least ``min_overlap`` seconds (or by the whole annotation, when the annotation is
shorter than that); it takes the annotation it overlaps most. A detection overlapping only
annotations that higher-scoring detections already took is a **duplicate**: neither true nor
false (a song heard in three consecutive windows is one annotation found, not two false alarms;
BirdNET-Analyzer's window-based evaluation does not count those windows as false positives
either). Any other detection is a **false positive**. An annotation no detection took is a
false negative. Greedy by score makes the outcome of a detection independent of every
detection scoring below it, so one pass gives the counts at every threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

TP, FP, DUPLICATE = 1, 0, -1

#: Float tolerance of the overlap test (times come from tables rounded to microseconds).
EPS = 1e-9


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    """Length of the intersection of [a0, a1] and [b0, b1] (0 when they only touch)."""
    return max(0.0, min(a1, b1) - max(a0, b0))


def match(detections: Sequence[tuple[float, float, float]],
          annotations: Sequence[tuple[float, float]], min_overlap: float) -> list[int]:
    """The outcome (``TP``, ``FP``, ``DUPLICATE``) of each ``(start, end, score)`` detection
    of one class in one recording against that class's ``(begin, end)`` annotations there."""
    if min_overlap <= 0:
        raise ValueError(f"minimum overlap must be > 0 s, got {min_overlap:g}")
    order = sorted(range(len(detections)), key=lambda i: (-detections[i][2], detections[i][0]))
    taken = [False] * len(annotations)
    need = [min(min_overlap, e - b) - EPS for b, e in annotations]
    out = [FP] * len(detections)
    for i in order:
        s, e, _ = detections[i]
        best, best_ov, dup = -1, 0.0, False
        for j, (b, f) in enumerate(annotations):
            ov = overlap(s, e, b, f)
            if ov <= 0 or ov < need[j]:
                continue
            if taken[j]:
                dup = True
            elif ov > best_ov:
                best, best_ov = j, ov
        if best >= 0:
            taken[best] = True
            out[i] = TP
        elif dup:
            out[i] = DUPLICATE
    return out
