"""Query by example: which windows of which files, embedded as the store's entries were.

A query is a file (every window of it, framed as ``embed`` frames a file), or a time range
of one: ``rec.wav:12.5-15.5``, or ``--start``/``--end`` for files given without one. Windows
start inside the range at the store's hop and are 3 s long (the last may run past the end of
the range into the recording; a range shorter than a window takes the window from its start).
Several queries are averaged into one vector, then L2-normalised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebird.audio import AudioError, AudioSettings, probe, window_starts
from edgebird.backbones import EmbeddingModel
from edgebird.pipeline import engine as eng
from edgebird.pipeline.store import content_hash
from edgebird.search.scan import normalise

_RANGE = re.compile(r"^(.*):(\d+(?:\.\d*)?)-(\d+(?:\.\d*)?)$")


class QueryError(Exception):
    """A query file that cannot be used (unreadable audio): exit status 1."""


@dataclass(frozen=True)
class Query:
    """One query file and the range of it to use (None: the whole file)."""

    path: Path
    start: float | None = None
    end: float | None = None

    def label(self) -> str:
        if self.start is None:
            return str(self.path)
        return f"{self.path}:{self.start:g}-{'' if self.end is None else f'{self.end:g}'}"

    def span(self) -> tuple[float, float]:
        """The range in seconds (the whole file: 0 to infinity)."""
        return (self.start or 0.0, np.inf if self.end is None else self.end)


def parse_query(spec: str, start: float | None = None, end: float | None = None) -> Query:
    """``file`` or ``file:START-END`` (seconds); ``start``/``end`` apply to a bare file.
    Raises ValueError for a bad range (a usage error)."""
    m = _RANGE.match(spec)
    path = spec
    if m and not Path(spec).exists():
        path, start, end = m.group(1), float(m.group(2)), float(m.group(3))
    if start is None and end is not None:
        start = 0.0
    if start is not None and (start < 0 or (end is not None and end <= start)):
        raise ValueError(f"bad time range in query {spec!r}: need 0 <= start < end")
    return Query(Path(path), start, end)


def query_starts(duration: float, q: Query, audio: AudioSettings) -> np.ndarray:
    """Start samples of the query's windows (embed's framing over the range)."""
    rate = audio.sample_rate
    total = int(round(duration * rate))
    lo = 0 if q.start is None else int(round(q.start * rate))
    hi = total if q.end is None else min(total, int(round(q.end * rate)))
    if lo >= total:
        raise ValueError(f"query {q.label()}: starts at or after the end of the recording "
                         f"({duration:.2f} s)")
    starts = lo + window_starts(hi - lo, audio)
    if len(starts) == 0:
        if q.start is None:
            raise QueryError(f"{q.path}: too short ({duration:.2f} s; the minimum is "
                             f"{audio.min_segment_seconds:g} s)")
        starts = np.array([lo], dtype=np.int64)  # a short range: the window from its start
    return starts


def embed_query(q: Query, model: EmbeddingModel, audio: AudioSettings,
                batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, str]:
    """``(starts_s, embeddings, content digest)`` of one query. Raises QueryError when the
    file cannot be read, ValueError for a range outside it."""
    if not q.path.is_file():
        raise QueryError(f"{q.path}: query file not found")
    try:
        info = probe(q.path)
    except AudioError as exc:
        raise QueryError(f"{q.path}: {exc}") from exc
    starts = query_starts(info.duration, q, audio)
    try:
        result = eng.run_task(eng.Task(0, 0, info, starts), model, audio, batch_size)
    except AudioError as exc:
        raise QueryError(f"{q.path}: {exc}") from exc
    return result.starts / audio.sample_rate, result.embeddings, content_hash(q.path)


def mean_vector(embeddings: list[np.ndarray]) -> np.ndarray:
    """The queries' windows, each normalised, averaged and normalised again: every window
    counts the same, whatever its loudness."""
    rows = np.concatenate([normalise(e) for e in embeddings])
    return normalise(rows.mean(axis=0, keepdims=True))[0]
