"""``edgebird search``: the settings, the search over a store, and where results go.

Which entries are searched: those made with the query's model (BirdNET, compared by
fingerprint) and one bandpass (``scan.settings_group``). A store holding entries of several
bandpasses is searched in the one chosen with ``fmin``/``fmax``; without a choice the search
stops and lists them. Entries of other models or settings are counted and reported, never
mixed in. The query is embedded with the chosen group's audio settings.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.audio import AudioSettings
from edgebird.backbones import EmbeddingModel
from edgebird.core.files import atomic_write_bytes
from edgebird.core.scores import Detection
from edgebird.options import opt
from edgebird.pipeline.store import MARKER, EmbeddingStore, Entry
from edgebird.search.query import Query, embed_query, mean_vector
from edgebird.search.scan import PRECISIONS, TopK, entry_blocks, exact_search, settings_group

HEADER = ("rank", "file", "start", "end", "score")


@dataclass(frozen=True)
class SearchSettings:
    """How many results, which ones, and how the store is scanned."""

    k: int = field(default=10, metadata=opt("-k", "--top-k", help="results to return"))
    min_score: float | None = field(default=None, metadata=opt(
        "--min-score", help="leave out windows below this cosine similarity (-1..1)"))
    per_recording: int | None = field(default=None, metadata=opt(
        "--per-recording", metavar="N",
        help="at most N results from one recording (so one long file cannot fill the list)"))
    exclude_query: bool = field(default=True, metadata=opt(
        "--exclude-query", help="leave out the query's own windows (those overlapping its "
                                "range) when the query file is in the store"))
    precision: str = field(default="float32", metadata=opt(
        "--precision", choices=PRECISIONS,
        help="score against the stored float32 vectors, or against float16 unit vectors "
             "(what an in-memory copy holds at half the size; scores within ~1e-3)"))
    chunk_rows: int = field(default=8192, metadata=opt(
        "--chunk-rows", help="windows per matrix product and per top-k update (with the "
                             "largest recording, what bounds the memory)"))
    index: bool = field(default=False, metadata=opt(
        "--index", help="use an approximate index (usearch, cached in STORE/search-index/) "
                        "instead of scanning every window; needs edgebird[search]"))
    fmin: float | None = field(default=None, metadata=opt(
        "--fmin", help="search the store's entries made with this bandpass lower edge "
                       "(needed only when the store holds several bandpasses)"))
    fmax: float | None = field(default=None, metadata=opt(
        "--fmax", help="and this upper edge"))

    def __post_init__(self) -> None:
        if self.k < 1 or (self.per_recording is not None and self.per_recording < 1):
            raise ValueError("-k and --per-recording must be >= 1")
        if self.chunk_rows < 1:
            raise ValueError("--chunk-rows must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")


@dataclass(frozen=True)
class Hit:
    rank: int
    file: str
    start: float
    end: float
    score: float


@dataclass
class SearchResult:
    hits: list[Hit]
    searched_entries: int
    searched_windows: int
    skipped_entries: int = 0
    excluded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"searched {self.searched_windows} windows of {self.searched_entries} "
                 f"recordings; {len(self.hits)} results"]
        if self.skipped_entries:
            lines.append(f"{self.skipped_entries} store entries made with another model or "
                         "bandpass were not searched")
        lines += [f"the query's own windows were left out: {x}" for x in self.excluded]
        return "\n".join(lines + self.notes)


def open_store(path: str | os.PathLike) -> EmbeddingStore:
    """An existing store (``EmbeddingStore`` would make a new, empty one)."""
    root = Path(path)
    if not (root / MARKER).is_file():
        raise ValueError(f"no embedding store at {root} (make one with 'edgebird embed')")
    return EmbeddingStore(root)


def select_entries(entries: list[Entry], model: EmbeddingModel,
                   s: SearchSettings) -> tuple[list[Entry], int]:
    """The entries to search (one settings group of the query's model) and how many others
    were left out. Raises ValueError when none fit or the choice is ambiguous."""
    groups: dict[tuple, list[Entry]] = defaultdict(list)
    for e in entries:
        groups[settings_group(e.meta)].append(e)
    mine = {g: es for g, es in groups.items() if g[0] == model.fingerprint}
    if not entries:
        raise ValueError("the store holds no entries")
    if not mine:
        names = sorted({e.meta.get("model", "?") for e in entries})
        raise ValueError(f"the store's entries were made with another model ({', '.join(names)}"
                         f"; fingerprints differ from {model.name}'s): queries must be "
                         "embedded by the same model, so they cannot be compared")
    if s.fmin is not None or s.fmax is not None:
        mine = {g: es for g, es in mine.items()
                if (s.fmin is None or g[1] == s.fmin) and (s.fmax is None or g[2] == s.fmax)}
        if not mine:
            raise ValueError("no entries of the store were made with that bandpass")
    if len(mine) > 1:
        listed = "; ".join(f"--fmin {g[1]:g} --fmax {g[2]:g} ({len(es)} files)"
                           for g, es in sorted(mine.items()))
        raise ValueError(f"the store holds entries of several bandpasses, which cannot be "
                         f"compared: choose one of {listed}")
    (chosen,) = mine.values()
    return chosen, len(entries) - len(chosen)


def search(store: str | os.PathLike, queries: Sequence[Query],
           settings: SearchSettings = SearchSettings(), model: EmbeddingModel | None = None,
           echo: Callable[[str], None] = print) -> SearchResult:
    """The ``k`` windows of ``store`` most similar to the mean of ``queries``. Raises
    ValueError for bad options or an unusable store, ``query.QueryError`` for a query file
    that cannot be read."""
    if not queries:
        raise ValueError("give at least one query")
    with open_store(store) as st:
        entries = list(st)
    if model is None:
        from edgebird.backbones import get_backbone

        model = get_backbone("birdnet")
    chosen, skipped = select_entries(entries, model, settings)
    audio = AudioSettings(**{**chosen[0].meta["audio"], "crop_mode": "segments"})
    embedded = [embed_query(q, model, audio) for q in queries]
    vector = mean_vector([e for _, e, _ in embedded])
    exclude: dict[int, tuple[float, float]] = {}
    excluded = []
    if settings.exclude_query:
        by_digest = {e.meta["digest"]: i for i, e in enumerate(chosen)}
        for q, (_, _, digest) in zip(queries, embedded, strict=True):
            if digest in by_digest:
                exclude[by_digest[digest]] = q.span()
                excluded.append(q.label())
    top = TopK(settings.k, settings.per_recording, settings.min_score)
    if settings.index:
        from edgebird.search.index import cached_index

        index = cached_index(Path(store), chosen, model.embedding_dim, settings.chunk_rows,
                             echo)
        top = index.search(vector, top, exclude, audio.segment_seconds)
        windows = len(index)
    else:
        exact_search(vector, entry_blocks(chosen, settings.chunk_rows, settings.precision,
                                          exclude), top, settings.chunk_rows)
        windows = top.seen
    hits = []
    for rank, (r, start, score) in enumerate(top.hits(), start=1):
        e = chosen[r]
        end = min(start + audio.segment_seconds, float(e.meta["duration"]))
        hits.append(Hit(rank, e.source, start, end, score))
    return SearchResult(hits, len(chosen), windows, skipped, excluded)


def table_text(hits: Sequence[Hit]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for h in hits:
        w.writerow([h.rank, h.file, f"{h.start:.2f}", f"{h.end:.2f}", f"{h.score:.4f}"])
    return buf.getvalue()


def write_table(hits: Sequence[Hit], dest: str | os.PathLike) -> Path:
    """``rank,file,start,end,score`` (CSV), written atomically."""
    dest = Path(dest)
    if dest.is_dir():
        raise ValueError(f"-o {dest} is a folder: give a file name for the table")
    atomic_write_bytes(dest, table_text(hits).encode("utf-8"))
    return dest


def write_clips(hits: Sequence[Hit], out: str | os.PathLike, seg_length: float = 3.0,
                folder: str = "") -> tuple[list[Path], list[tuple[str, str]]]:
    """Each hit as a 48 kHz WAV with context (``segments``' clip cutting and names, the score
    in place of the confidence) in ``out/folder``. Returns the clips written and the
    recordings that could not be cut (moved or deleted since ``embed``), with the reason."""
    from edgebird.audio import AudioError
    from edgebird.pipeline.segments import extract_file

    per_file: dict[str, list[Detection]] = defaultdict(list)
    for h in hits:
        per_file[h.file].append(Detection(h.file, h.start, h.end, folder or "clip", h.score))
    written, failed = [], []
    for f in sorted(per_file):
        try:
            written += extract_file(Path(f), per_file[f], Path(out), seg_length, folder=folder)
        except AudioError as exc:
            failed.append((f, str(exc)))
        except OSError as exc:
            failed.append((f, f"cannot cut clips ({exc.strerror or exc})"))
    return written, failed


def training_folder(label: str, negative: bool = False) -> str:
    """BirdNET-Analyzer's (and ``edgebird train``'s) class folder: ``Label`` for positives,
    ``-Label`` for hard negatives of it."""
    label = label.strip()
    if not label or label.startswith("-") or any(c in label for c in '/\\,'):
        raise ValueError("--label must name one class (no '/', ',' or leading '-')")
    return f"-{label}" if negative else label


def scores_summary(hits: Sequence[Hit]) -> str:
    if not hits:
        return "no results"
    s = np.array([h.score for h in hits])
    return f"scores {s.max():.3f} .. {s.min():.3f}"
