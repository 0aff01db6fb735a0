"""The approximate index (usearch's HNSW), for stores too big to scan at every query.

Built once from the normalised windows of the searched entries and cached beside the store
(``<store>/search-index/<key>.usearch`` with ``<key>.npz`` naming each row's entry and start),
keyed by the entries' store keys and the settings group: adding a file to the store makes a
new key, so a stale index is never used. usearch is imported only here (``pip install
'edgebird[search]'``). Results are approximate: ``recall@k`` against the exact search is in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgebird.core.files import atomic_path, hash_text
from edgebird.pipeline.store import Entry
from edgebird.search.scan import TopK, entry_blocks

FOLDER = "search-index"


def _usearch():
    try:
        from usearch.index import Index
    except ImportError as exc:
        raise ValueError("--index needs usearch: pip install 'edgebird[search]'") from exc
    return Index


def index_key(entries: Sequence[Entry], dtype: str) -> str:
    return hash_text(json.dumps({"entries": [e.meta["key"] for e in entries], "dtype": dtype,
                                 "version": 1}))[:32]


class VectorIndex:
    """An HNSW index over unit vectors, with each row's (recording, start)."""

    def __init__(self, index, recording: np.ndarray, starts: np.ndarray):
        self.index, self.recording, self.starts = index, recording, starts

    def __len__(self) -> int:
        return len(self.recording)

    @classmethod
    def build(cls, blocks, ndim: int, dtype: str = "f16", threads: int = 0) -> VectorIndex:
        Index = _usearch()
        index = Index(ndim=ndim, metric="cos", dtype=dtype)
        recs, starts, n = [], [], 0
        for b in blocks:
            keys = np.arange(n, n + len(b.starts), dtype=np.uint64)
            index.add(keys, np.ascontiguousarray(b.vectors, dtype=np.float32),
                      threads=threads)  # cosine: usearch normalises
            recs.append(b.recording)
            starts.append(b.starts)
            n += len(b.starts)
        if not recs:
            return cls(index, np.zeros(0, dtype=np.int64), np.zeros(0))
        return cls(index, np.concatenate(recs), np.concatenate(starts))

    def search(self, query: np.ndarray, top: TopK,
               exclude: dict[int, tuple[float, float]] | None = None,
               segment_seconds: float = 3.0) -> TopK:
        """Ask the index for more candidates than ``k`` (exclusions and the per-recording
        limit remove some), four times more each round until ``top`` is full or every row
        was returned."""
        exclude = exclude or {}
        count = min(len(self), max(10 * top.k, 100))
        while True:
            m = self.index.search(query.astype(np.float32), count)
            keys = np.asarray(m.keys, dtype=np.int64)
            scores = (1.0 - np.asarray(m.distances, dtype=np.float64)).astype(np.float32)
            rec, st = self.recording[keys], self.starts[keys]
            keep = np.ones(len(keys), dtype=bool)
            for r, (lo, hi) in exclude.items():
                keep &= ~((rec == r) & (st < hi) & (st + segment_seconds > lo))
            trial = TopK(top.k, top.per_recording, top.min_score)
            trial.offer(rec[keep], st[keep], scores[keep])
            low = top.min_score is not None and len(scores) and scores.min() < top.min_score
            if len(trial.scores) == top.k or count >= len(self) or low:
                return trial
            count = min(len(self), 4 * count)


def cached_index(root: Path, entries: Sequence[Entry], ndim: int,
                 chunk_rows: int = 8192, echo=print) -> VectorIndex:
    """The store's index for these entries: loaded when cached, else built and saved."""
    Index = _usearch()
    key = index_key(entries, "f16")
    folder = Path(root) / FOLDER
    idx_file, rows_file = folder / f"{key}.usearch", folder / f"{key}.npz"
    if idx_file.is_file() and rows_file.is_file():
        with np.load(rows_file) as z:
            recording, starts, names = z["recording"], z["starts"], list(z["entries"])
        if names == [e.meta["key"] for e in entries]:
            index = Index.restore(str(idx_file), view=False)
            if index is not None and len(index) == len(recording):
                return VectorIndex(index, recording, starts)
    echo(f"building the search index for {len(entries)} entries (cached in {folder})")
    built = VectorIndex.build(entry_blocks(entries, chunk_rows), ndim)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(idx_file) as tmp:
        built.index.save(str(tmp))
    with atomic_path(rows_file) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, recording=built.recording, starts=built.starts,
                 entries=np.array([e.meta["key"] for e in entries]))
    return built
