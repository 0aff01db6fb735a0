"""The exact search: every window of the selected store entries, scored by cosine similarity.

Memory is bounded by ``chunk_rows`` (and the largest single entry, which ``Entry.load`` reads
whole), not by the store: entries are streamed, cut into chunks, normalised and scored with
one matrix product each, and only a running top-k is kept (``TopK``). The per-recording limit
and the minimum score are applied inside that running top-k, and the result is still exact:
a window is dropped only when ``k`` better admissible windows (or ``per_recording`` better
ones of its own recording) are already known, and a later arrival can only raise that bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edgebird.pipeline.store import Entry

PRECISIONS = ("float32", "float16")
#: Rows scored per matrix product when vectors are held in float16 (numpy has no float16
#: BLAS: each slice is widened to float32 for the product, so the temporary stays small).
_WIDEN_ROWS = 8192


@dataclass(frozen=True)
class Block:
    """Rows of the store: the recording (index into the searched entries), the window start
    in seconds, and the unit vectors (float32 or float16)."""

    recording: np.ndarray
    starts: np.ndarray
    vectors: np.ndarray


def settings_group(meta: dict) -> tuple:
    """What decides whether two windows' embeddings can be compared: the model (by
    fingerprint) and what changes a window's samples (bandpass, sample rate, window length).
    Overlap, crop mode and minimum segment decide which windows exist, not what a window's
    embedding is, so entries differing only in those are searched together."""
    a = meta["audio"]
    return (meta["model_fingerprint"], float(a["fmin"]), float(a["fmax"]),
            int(a["sample_rate"]), float(a["segment_seconds"]))


def normalise(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero and scores 0)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(dtype, copy=False)


def entry_blocks(entries: Sequence[Entry], chunk_rows: int = 65536,
                 precision: str = "float32",
                 exclude: dict[int, tuple[float, float]] | None = None) -> Iterator[Block]:
    """The entries' windows as normalised chunks of at most ``chunk_rows`` rows. ``exclude``
    maps a recording to a time range whose overlapping windows are left out (the query's own
    windows)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    exclude = exclude or {}
    pending: list[Block] = []
    rows = 0
    for i, entry in enumerate(entries):
        starts, embs = entry.load()
        if i in exclude:
            lo, hi = exclude[i]
            seg = float(entry.meta["audio"]["segment_seconds"])
            keep = ~((starts < hi) & (starts + seg > lo))
            starts, embs = starts[keep], embs[keep]
        for a in range(0, len(starts), chunk_rows):
            part = Block(np.full(len(starts[a:a + chunk_rows]), i, dtype=np.int64),
                         starts[a:a + chunk_rows], normalise(embs[a:a + chunk_rows], precision))
            pending.append(part)
            rows += len(part.starts)
            if rows >= chunk_rows:
                yield _concat(pending)
                pending, rows = [], 0
    if pending:
        yield _concat(pending)


def _concat(blocks: list[Block]) -> Block:
    if len(blocks) == 1:
        return blocks[0]
    return Block(np.concatenate([b.recording for b in blocks]),
                 np.concatenate([b.starts for b in blocks]),
                 np.concatenate([b.vectors for b in blocks]))


def scores_of(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine scores of unit rows against a unit query, in float32."""
    q = query.astype(np.float32)
    if vectors.dtype == np.float32:
        return vectors @ q
    return np.concatenate([vectors[a:a + _WIDEN_ROWS].astype(np.float32) @ q
                           for a in range(0, len(vectors), _WIDEN_ROWS)] or [np.zeros(0)])


class TopK:
    """The running best ``k`` windows, at most ``per_recording`` from one recording, none
    below ``min_score``. Ties are broken by recording and start, so results are
    reproducible whatever the chunking."""

    def __init__(self, k: int, per_recording: int | None = None,
                 min_score: float | None = None):
        if k < 1 or (per_recording is not None and per_recording < 1):
            raise ValueError("-k and --per-recording must be >= 1")
        self.k, self.per_recording, self.min_score = k, per_recording, min_score
        self.recording = np.zeros(0, dtype=np.int64)
        self.starts = np.zeros(0, dtype=np.float64)
        self.scores = np.zeros(0, dtype=np.float32)

    def bar(self) -> float:
        """The score a new window must reach to be considered."""
        floor = -np.inf if self.min_score is None else self.min_score
        if len(self.scores) == self.k:
            return max(floor, float(self.scores[-1]))
        return floor

    def offer(self, recording: np.ndarray, starts: np.ndarray, scores: np.ndarray) -> None:
        keep = scores >= self.bar()
        if not keep.any():
            return
        rec = np.concatenate([self.recording, recording[keep]])
        st = np.concatenate([self.starts, starts[keep]])
        sc = np.concatenate([self.scores, scores[keep].astype(np.float32)])
        order = np.lexsort((st, rec, -sc))  # best first; ties by recording, start
        rec, st, sc = rec[order], st[order], sc[order]
        if self.per_recording is not None:
            by_rec = np.lexsort((np.arange(len(rec)), rec))  # stable: best first per recording
            rank = np.empty(len(rec), dtype=np.int64)
            grouped = rec[by_rec]
            first = np.r_[0, np.flatnonzero(np.diff(grouped)) + 1]
            sizes = np.diff(np.r_[first, len(grouped)])
            rank[by_rec] = np.arange(len(rec)) - np.repeat(first, sizes)
            ok = rank < self.per_recording
            rec, st, sc = rec[ok], st[ok], sc[ok]
        self.recording, self.starts, self.scores = rec[:self.k], st[:self.k], sc[:self.k]

    def hits(self) -> list[tuple[int, float, float]]:
        """``(recording, start, score)``, best first."""
        return [(int(r), float(s), float(c))
                for r, s, c in zip(self.recording, self.starts, self.scores, strict=True)]


def exact_search(query: np.ndarray, blocks: Iterable[Block], top: TopK) -> TopK:
    """Score every block against the unit ``query`` and keep the best in ``top``."""
    for b in blocks:
        top.offer(b.recording, b.starts, scores_of(b.vectors, query))
    return top
