"""``edgebird embed``: audio files in, an embedding store (and optional CSV files) out.

Glue between the engine (``engine.py``) and the store (``store.py``): it plans work units,
skips files the store already has, streams each finished unit to disk (memory stays flat in
the number and length of files), publishes a file when its last unit lands, and reports
every file that cannot be used without stopping the batch. An interrupted run resumes: whole
files are cache hits and finished units of a half-done file are reused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgebird.audio import (
    AudioError,
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
from edgebird.pipeline.batch import FileBatch, FileJob, FileOutcome, file_problem, guarded
from edgebird.pipeline.errorlog import ErrorLog, failure_lines
from edgebird.pipeline.store import EmbeddingStore, Entry, content_hash, entry_key


@dataclass
class EmbedSummary:
    files: int = 0
    computed: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    windows: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    entries: list[Entry] = field(default_factory=list)

    def text(self) -> str:
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        lines = [
            f"files: {self.files} ({self.computed} embedded, {self.cached} from the store, "
            f"{len(self.failed)} failed)",
            f"audio embedded: {self.audio_seconds / 3600:.3f} h in {self.windows} windows, "
            f"{self.wall_seconds:.1f} s ({speed:.0f}x realtime)",
        ]
        return "\n".join(lines + failure_lines(self.failed))


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
        key = entry_key(digest, audio.key(), model.fingerprint)
        if st.get(key) is not None:
            return FileOutcome(rel, str(path), "cached", seconds=info.duration, key=key)
        units, n_windows = eng.plan_units(info, audio, chunk_windows, 1)
        left = set(range(len(units))) - st.done_parts(key)
        tasks = [eng.Task(0, i, info, s) for i, s in enumerate(units) if i in left]
        for r in eng.run_units(tasks, model, audio, batch_size):
            st.write_part(key, r.part, r.starts / audio.sample_rate, r.embeddings)
        notes = notes_for(info, audio)
        st.commit(key, entry_meta(path, rel, digest, info, n_windows, audio, model, notes))
        return FileOutcome(rel, str(path), "done", windows=n_windows, seconds=info.duration,
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
    notes: list = field(default_factory=list)


class _Run(FileBatch):
    """One ``embed_files`` call: units stream into the store; a file is published by its
    last unit."""

    desc = "embedding"

    def __init__(self, store: EmbeddingStore, log: ErrorLog, audio: AudioSettings,
                 engine: eng.EngineSettings, model: EmbeddingModel, csv_dir: Path | None):
        super().__init__(model, audio, engine, log)
        self.store, self.csv_dir = store, csv_dir
        self.fingerprint = model.fingerprint
        self.summary = EmbedSummary()

    def plan(self, path: Path, rel: str) -> None:
        try:
            info = probe(path)
            digest = self.store.digest(path)
            key = entry_key(digest, self.audio.key(), self.fingerprint)
            entry = self.store.get(key)
            if entry is not None:
                self.summary.cached += 1
                # Keyed by content: the entry may have been made from a copy elsewhere, so
                # the summary names the file asked for, not the one embedded first.
                entry = Entry(entry.path, {**entry.meta, "source": str(path.resolve()),
                                           "relative": rel})
                self._publish(entry, rel, str(path))
                return
            units, n_windows = self.plan_units(info)
        except (AudioError, OSError) as exc:
            self.log.error(str(path), file_problem(exc))
            return
        notes = notes_for(info, self.audio)
        for note in notes:
            self.log.warning(str(path), note)
        left = set(range(len(units))) - self.store.done_parts(key)
        self.add(_Job(path, rel, info, left, n_windows, key=key, digest=digest, notes=notes),
                 units)

    def on_failed(self, job: _Job, reason: str) -> None:
        self.store.abort(job.key)
        super().on_failed(job, reason)

    def on_part(self, job: _Job, result: eng.PartResult) -> None:
        self.store.write_part(job.key, result.part, result.starts / self.audio.sample_rate,
                              result.embeddings)
        self.summary.windows += len(result.starts)

    def on_done(self, job: _Job) -> None:
        entry = self.store.commit(job.key, entry_meta(job.path, job.rel, job.digest, job.info,
                                                      job.n_windows, self.audio, self.model,
                                                      job.notes))
        self.summary.computed += 1
        self.summary.audio_seconds += job.info.duration
        self._publish(entry, job.rel, str(job.path))

    def _publish(self, entry: Entry, rel: str, shown_path: str) -> None:
        self.summary.entries.append(entry)
        if self.csv_dir:
            write_embeddings_csv(entry, self.csv_dir / (rel + ".embeddings.csv"), shown_path)

    def close(self) -> None:
        self.store.close()
        super().close()


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
    (a scheduler address or ``local[:N]``) runs ``embed_file`` per file on a Dask cluster.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    if model is None:
        from edgebird.backbones.birdnet.model import BirdNET

        model = BirdNET(num_threads=engine.threads, batch_size=engine.batch_size)
    if audio.sample_rate != model.sample_rate or audio.segment_samples != model.segment_samples:
        raise ValueError("audio settings do not match the model's sample rate / window")
    out = Path(out)
    log = ErrorLog(out / "error_log.txt", echo or (lambda msg: tqdm.write(msg)))
    files, problems = find_audio_files(list(inputs))
    for path, reason in problems:
        log.error(path, reason)
    run = _Run(EmbeddingStore(out), log, audio, engine, model,
               Path(csv_dir) if csv_dir else None)
    run.summary.files = len(files) + len(problems)
    try:
        if dask:
            _run_on_dask(dask, files, out, run, progress)
        else:
            run.run_files(files, run.plan, progress)
    finally:
        run.close()
    run.summary.failed = list(log.errors)
    run.summary.wall_seconds = time.perf_counter() - t0
    return run.summary


def _run_on_dask(spec: str, files: list[tuple[Path, str]], out: Path, run: _Run,
                 progress: bool) -> None:
    """``embed_file`` for every file on a Dask cluster (``cluster.py``), booked as the local
    batch books its files. The cluster hashes the files (the local hash memo is not used)."""
    from edgebird.cluster.dask import DaskTarget, map_files

    target = DaskTarget.parse(spec, run.engine.threads)
    todo = [(Path(os.path.abspath(p)), rel) for p, rel in files]  # workers have other cwds
    kwargs = {"store": os.path.abspath(out), "audio": run.audio,
              "batch_size": run.engine.batch_size, "chunk_windows": run.engine.chunk_windows}
    for o in map_files(target, embed_file, todo, run.model, kwargs, progress, "embedding"):
        for note in o.warnings:
            run.log.warning(o.path, note)
        if o.status == "failed":
            run.log.error(o.path, o.reason)
            continue
        entry = run.store.get(o.key)
        if entry is None:  # pragma: no cover - the worker said it committed it
            run.log.error(o.path, "the cluster reported this file done but its entry is missing")
            continue
        if o.status == "cached":
            run.summary.cached += 1
            entry = Entry(entry.path, {**entry.meta, "source": o.path, "relative": o.rel})
        else:
            run.summary.computed += 1
            run.summary.windows += o.windows
            run.summary.audio_seconds += o.seconds
        run._publish(entry, o.rel, o.path)


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
