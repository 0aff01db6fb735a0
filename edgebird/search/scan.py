"""The exact search: every window of the selected store entries, scored by cosine similarity.

Memory is bounded by the largest single entry (which ``Entry.load`` reads whole) and
``chunk_rows``, not by the store: entries are streamed one at a time and scored with one matrix
product per piece of at most ``chunk_rows`` rows (the norms divide the scores, so no
normalised copy is made), and only a running top-k is kept (``TopK``). The per-recording limit
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
#: Rows per matrix product when vectors are held in float16 (numpy has no float16 BLAS:
#: each slice is widened to float32 for the product, so the temporary stays small).
_WIDEN_ROWS = 8192


@dataclass(frozen=True)
class Block:
    """Rows of one store entry: the recording (index into the searched entries), the window
    starts in seconds, the vectors and ``scale`` (a row's cosine score is ``vectors @ q *
    scale``): float32 as stored with ``scale`` = 1 / norm, so no normalised copy is made, or
    float16 unit vectors with ``scale`` = 1."""

    recording: np.ndarray
    starts: np.ndarray
    vectors: np.ndarray
    scale: np.ndarray


def settings_group(meta: dict) -> tuple:
    """What decides whether two windows' embeddings can be compared: the model (by
    fingerprint) and what changes a window's samples (bandpass, sample rate, window length).
    Overlap, crop mode and minimum segment decide which windows exist, not what a window's
    embedding is, so entries differing only in those are searched together."""
    a = meta["audio"]
    return (meta["model_fingerprint"], float(a["fmin"]), float(a["fmax"]),
            int(a["sample_rate"]), float(a["segment_seconds"]))


def _inverse_norms(x: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))
    return np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)


def normalise(x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """Rows scaled to unit length (an all-zero row stays zero and scores 0)."""
    x = np.asarray(x, dtype=np.float32)
    return (x * _inverse_norms(x)[:, None]).astype(dtype, copy=False)


def entry_blocks(entries: Sequence[Entry], chunk_rows: int = 8192,
                 precision: str = "float32",
                 exclude: dict[int, tuple[float, float]] | None = None) -> Iterator[Block]:
    """The entries' windows, one entry at a time, in pieces of at most ``chunk_rows`` rows.
    ``exclude`` maps a recording to a time range whose overlapping windows are left out
    (the query's own windows)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
    exclude = exclude or {}
    for i, entry in enumerate(entries):
        starts, embs = entry.load()
        if i in exclude:
            lo, hi = exclude[i]
            seg = float(entry.meta["audio"]["segment_seconds"])
            keep = ~((starts < hi) & (starts + seg > lo))
            starts, embs = starts[keep], embs[keep]
        for a in range(0, len(starts), chunk_rows):
            rows = np.asarray(embs[a:a + chunk_rows], dtype=np.float32)
            rec = np.full(len(rows), i, dtype=np.int64)
            if precision == "float32":
                yield Block(rec, starts[a:a + chunk_rows], rows, _inverse_norms(rows))
            else:
                yield Block(rec, starts[a:a + chunk_rows], normalise(rows, precision),
                            np.ones(len(rows), dtype=np.float32))


def scores_of(block: Block, query: np.ndarray) -> np.ndarray:
    """Cosine scores of a block's rows against a unit query, in float32."""
    q = query.astype(np.float32)
    v = block.vectors
    if v.dtype == np.float32:
        return (v @ q) * block.scale
    return np.concatenate([v[a:a + _WIDEN_ROWS].astype(np.float32) @ q
                           for a in range(0, len(v), _WIDEN_ROWS)] or [np.zeros(0)])


class StoreMatrix:
    """The entries' windows held in memory as unit vectors, for many queries over one store
    (a search tab answering each query without reading the store again). float16 holds them
    in half the memory of float32; ``blocks`` feeds ``exact_search`` as ``entry_blocks``
    does, so the results are the same as a scan's at that precision."""

    def __init__(self, entries: Sequence[Entry], precision: str = "float32",
                 chunk_rows: int = 8192):
        parts = list(entry_blocks(entries, chunk_rows, precision))
        dim = int(entries[0].meta["embedding_dim"]) if entries else 0
        self.recording = np.concatenate([b.recording for b in parts] or [np.zeros(0, int)])
        self.starts = np.concatenate([b.starts for b in parts] or [np.zeros(0)])
        # float32 pieces are the stored rows (scaled here); float16 ones are already unit.
        # Loading peaks at twice the final size (the pieces, then one array).
        self.vectors = np.concatenate(
            [b.vectors * b.scale[:, None] if precision == "float32" else b.vectors
             for b in parts] or [np.zeros((0, dim), dtype=precision)])
        self.seconds = {i: float(e.meta["audio"]["segment_seconds"])
                        for i, e in enumerate(entries)}

    @property
    def nbytes(self) -> int:
        return self.vectors.nbytes + self.starts.nbytes + self.recording.nbytes

    def blocks(self, chunk_rows: int = 8192,
               exclude: dict[int, tuple[float, float]] | None = None) -> Iterator[Block]:
        for a in range(0, len(self.starts), chunk_rows):
            rec, st = self.recording[a:a + chunk_rows], self.starts[a:a + chunk_rows]
            vec = self.vectors[a:a + chunk_rows]
            if exclude:
                keep = np.ones(len(rec), dtype=bool)
                for r, (lo, hi) in exclude.items():
                    keep &= ~((rec == r) & (st < hi) & (st + self.seconds[r] > lo))
                rec, st, vec = rec[keep], st[keep], vec[keep]
            yield Block(rec, st, vec, np.ones(len(rec), dtype=np.float32))


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
        self.seen = 0  # windows offered

    def bar(self) -> float:
        """The score a new window must reach to be considered."""
        floor = -np.inf if self.min_score is None else self.min_score
        if len(self.scores) == self.k:
            return max(floor, float(self.scores[-1]))
        return floor

    def offer(self, recording: np.ndarray, starts: np.ndarray, scores: np.ndarray) -> None:
        self.seen += len(scores)
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


def exact_search(query: np.ndarray, blocks: Iterable[Block], top: TopK,
                 chunk_rows: int = 8192) -> TopK:
    """Score every block against the unit ``query`` and keep the best in ``top``; scores
    of small entries are gathered into chunks of ``chunk_rows`` before each ``offer``."""
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rows = 0
    for b in blocks:
        pending.append((b.recording, b.starts, scores_of(b, query)))
        rows += len(b.starts)
        if rows >= chunk_rows:
            top.offer(*(np.concatenate(x) for x in zip(*pending, strict=True)))
            pending, rows = [], 0
    if pending:
        top.offer(*(np.concatenate(x) for x in zip(*pending, strict=True)))
    return top
