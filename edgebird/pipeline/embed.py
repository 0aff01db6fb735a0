"""``edgebird embed``: audio files in, an embedding store (and optional CSV files) out.

Glue between the engine (``engine.py``) and the store (``store.py``): it plans work units,
skips files the store already has (``lookup``), streams each finished unit to disk (memory
stays flat in the number and length of files), publishes a file when its last unit lands,
and reports every file that cannot be used without stopping the batch. The files' outcomes
come from the local engine or a Dask cluster (``embed_file`` per file) and are booked by one
``_Ledger`` either way. An interrupted run resumes: whole files are cache hits and finished
units of a half-done file are reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgebird.audio import (
    AudioInfo,
    AudioSettings,
    find_audio_files,
    notes_for,
    probe,
)
from edgebird.backbones import EmbeddingModel
from edgebird.core.files import atomic_write_bytes
from edgebird.core.runtime import DEFAULT_BATCH_SIZE
from edgebird.pipeline import engine as eng
from edgebird.pipeline.batch import FileBatch, FileJob, FileOutcome, Ledger, RunSummary, guarded
from edgebird.pipeline.errorlog import (
    ErrorLog,
    check_output_folder,
    failure_lines,
    output_errors,
)
from edgebird.pipeline.store import EmbeddingStore, Entry, content_hash, entry_key


@dataclass
class EmbedSummary(RunSummary):
    computed: int = 0
    cached: int = 0
    entries: list[Entry] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"files: {self.files} ({self.computed} embedded, {self.cached} from the store, "
            f"{len(self.failed)} failed)",
        ]
        if self.windows:  # else the line above says it all
            lines.append(self.audio_line("embedded"))
        return "\n".join(lines + failure_lines(self.failed))

    def all_cached_text(self) -> str | None:
        """What the progress bar would have shown on a full cache hit, in words."""
        if self.cached and not self.computed and not self.failed:
            return f"embedding: all {self.cached} files already in the store"
        return None


def entry_meta(path: Path, rel: str, digest: str, info: AudioInfo, n_windows: int,
               audio: AudioSettings, model: EmbeddingModel, notes: list[str]) -> dict:
    """What a store entry records about its file, settings and model."""
    return {
        "source": str(Path(path).resolve()), "relative": rel, "digest": digest,
        "duration": info.duration, "sample_rate": info.sample_rate,
        "channels": info.channels, "format": info.format,
        "n_windows": n_windows, "audio": audio.key(), "model": model.name,
        "model_fingerprint": model.fingerprint, "embedding_dim": model.embedding_dim,
        "notes": notes,
    }


def lookup(store: EmbeddingStore, path: Path, rel: str, info: AudioInfo, digest: str,
           audio: AudioSettings, model: EmbeddingModel) -> tuple[str, FileOutcome | None]:
    """The one skip check: the file's store key, and a cached outcome if the store has it
    (keyed by content, settings and model, so a copy elsewhere is a hit too)."""
    key = entry_key(digest, audio.key(), model.fingerprint)
    if store.get(key) is not None:
        return key, FileOutcome(rel, str(path), "cached", seconds=info.duration, key=key)
    return key, None


def embed_file(path: str | os.PathLike, rel: str, store: str | os.PathLike,
               audio: AudioSettings, model: EmbeddingModel,
               batch_size: int = DEFAULT_BATCH_SIZE, chunk_windows: int = 64) -> FileOutcome:
    """One file into the store at ``store``, start to finish: a cache hit if the store has
    it, else computed (reusing parts an interrupted attempt left) and published in one
    rename. A pure function of (file, settings), the unit a cluster scheduler maps
    (``cluster.py``); it needs no shared state but the store folder. Never raises for a bad
    file: the failure is in the outcome and nothing partial is published."""
    path = Path(path)
    st = EmbeddingStore(store)
    key = ""

    def work() -> FileOutcome:
        nonlocal key
        info = probe(path)
        digest = content_hash(path)
        key, hit = lookup(st, path, rel, info, digest, audio, model)
        if hit is not None:
            return hit
        units, n_windows = eng.plan_units(info, audio, chunk_windows, 1)
        left = set(range(len(units))) - st.done_parts(key)
        tasks = [eng.Task(0, i, info, s) for i, s in enumerate(units) if i in left]
        computed = 0
        for r in eng.run_units(tasks, model, audio, batch_size):
            st.write_part(key, r.part, r.starts / audio.sample_rate, r.embeddings)
            computed += len(r.starts)
        notes = notes_for(info, audio)
        st.commit(key, entry_meta(path, rel, digest, info, n_windows, audio, model, notes))
        return FileOutcome(rel, str(path), "done", windows=computed, seconds=info.duration,
                           warnings=notes, key=key)

    outcome = guarded(rel, str(path), work)
    if outcome.status == "failed" and key:
        st.abort(key)
    st.close()
    return outcome


@dataclass
class _Job(FileJob):
    key: str = ""
    digest: str = ""
    computed: int = 0  # windows embedded by this run (a resumed file had some already)


class _Run(FileBatch):
    """One ``embed_files`` call: units stream into the store; a file is published by its
    last unit. On a cluster, ``embed_file`` per file (the cluster hashes the files: the
    local hash memo is not used)."""

    desc = "embedding"
    per_file = staticmethod(embed_file)

    def __init__(self, store: EmbeddingStore, audio: AudioSettings,
                 engine: eng.EngineSettings, model: EmbeddingModel):
        super().__init__(model, audio, engine)
        self.store = store

    def per_file_kwargs(self) -> dict:
        return {"store": os.path.abspath(self.store.root), "audio": self.audio,
                "batch_size": self.engine.batch_size, "chunk_windows": self.engine.chunk_windows}

    def plan_file(self, path: Path, rel: str, info: AudioInfo) -> FileOutcome | tuple[_Job, list]:
        digest = self.store.digest(path)
        key, hit = lookup(self.store, path, rel, info, digest, self.audio, self.model)
        if hit is not None:
            return hit
        units, n_windows = self.plan_units(info)
        left = set(range(len(units))) - self.store.done_parts(key)
        notes = notes_for(info, self.audio)
        return _Job(path, rel, info, left, n_windows, notes=notes, key=key,
                    digest=digest), units

    def on_failed(self, job: _Job) -> None:
        self.store.abort(job.key)

    def on_part(self, job: _Job, result: eng.PartResult) -> None:
        self.store.write_part(job.key, result.part, result.starts / self.audio.sample_rate,
                              result.embeddings)
        job.computed += len(result.starts)

    def finish(self, job: _Job) -> FileOutcome:
        self.store.commit(job.key, entry_meta(job.path, job.rel, job.digest, job.info,
                                              job.n_windows, self.audio, self.model, job.notes))
        return FileOutcome(job.rel, str(job.path), "done", windows=job.computed,
                           seconds=job.info.duration, key=job.key)


class _Ledger(Ledger):
    """Books embed's outcomes: the summary's counts and entries, and the CSV files."""

    def __init__(self, store: EmbeddingStore, log: ErrorLog, csv_dir: Path | None):
        super().__init__(log)
        self.store, self.csv_dir = store, csv_dir
        self.summary = EmbedSummary()

    def count(self, o: FileOutcome) -> None:
        entry = self.store.get(o.key)
        if entry is None:  # pragma: no cover - the stream said it committed it
            self.log.error(o.path, "reported done but its store entry is missing")
            return
        # Keyed by content: the entry may have been made from a copy elsewhere (an earlier
        # run, or an identical file of this one committed first), so the summary names the
        # file asked for, not the one embedded first: every input gets its own entry.
        source = str(Path(o.path).resolve())
        if entry.source != source:
            entry = Entry(entry.path, {**entry.meta, "source": source, "relative": o.rel})
        if o.status == "cached":
            self.summary.cached += 1
        else:
            self.summary.computed += 1
            self.summary.windows += o.windows
            self.summary.audio_seconds += o.seconds
        self.summary.entries.append(entry)
        if self.csv_dir:
            write_embeddings_csv(entry, self.csv_dir / (o.rel + ".embeddings.csv"), o.path)


def embed_files(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    audio: AudioSettings = AudioSettings(),
    engine: eng.EngineSettings = eng.EngineSettings(),
    model: EmbeddingModel | None = None,
    csv_dir: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    dask: str | None = None,
) -> EmbedSummary:
    """Embed every audio file under ``inputs`` into the store at ``out``.

    Returns a summary; per-file problems are in ``summary.failed`` and in
    ``out/error_log.txt``. Raises ValueError only for settings that fit no file. ``dask``
    (a scheduler address or ``local[:N]``) runs ``embed_file`` per file on a Dask cluster;
    the outcomes are booked as the local batch's are.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    check_output_folder(Path(out))
    if model is None:
        from edgebird.backbones.birdnet.model import BirdNET

        model = BirdNET(num_threads=engine.threads, batch_size=engine.batch_size)
    if audio.sample_rate != model.sample_rate or audio.segment_samples != model.segment_samples:
        raise ValueError("audio settings do not match the model's sample rate / window")
    out = Path(out)
    say = echo or (lambda msg: tqdm.write(msg))
    log = ErrorLog(out / "error_log.txt", say)
    with output_errors(out, log):
        files, problems = find_audio_files(list(inputs))
        for path, reason in problems:
            log.error(path, reason)
        store = EmbeddingStore(out)
        ledger = _Ledger(store, log, Path(csv_dir) if csv_dir else None)
        ledger.summary.files = len(files) + len(problems)
        try:
            with _Run(store, audio, engine, model) as run:
                for outcome in run.outcomes(files, progress, dask):
                    ledger.book(outcome)
        finally:
            store.close()
    ledger.summary.failed = list(log.errors)
    ledger.summary.wall_seconds = time.perf_counter() - t0
    if progress and not dask and ledger.summary.all_cached_text():
        say(ledger.summary.all_cached_text())  # in place of the bar, which was not shown
    return ledger.summary


def write_embeddings_csv(entry: Entry, dest: Path, display_path: str | None = None) -> None:
    """``file,start,end,embedding`` with the embedding as one quoted comma list (BNA's
    ``--file_output``); end is clipped to the file's duration. Written atomically."""
    starts, embs = entry.load()
    seg = entry.meta["audio"]["segment_seconds"]
    name = display_path or entry.source
    lines = ["file,start,end,embedding"]
    for s, e in zip(starts, embs, strict=True):
        end = min(s + seg, entry.meta["duration"])
        values = ",".join(f"{v:.8g}" for v in e.tolist())
        lines.append(f'"{name}",{s:.2f},{end:.2f},"{values}"')
    atomic_write_bytes(dest, ("\n".join(lines) + "\n").encode())
