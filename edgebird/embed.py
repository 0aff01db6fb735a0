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

import numpy as np

from edgebird import engine as eng
from edgebird.audio import (
    AudioError,
    AudioInfo,
    AudioSettings,
    find_audio_files,
    notes_for,
    planned_starts,
    probe,
    window_starts,
)
from edgebird.backbones import EmbeddingModel
from edgebird.errorlog import ErrorLog
from edgebird.store import EmbeddingStore, Entry, atomic_write_bytes, entry_key


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
        if self.failed:
            lines.append("failed files (see error_log.txt):")
            lines += [f"  {p}: {r}" for p, r in self.failed]
        return "\n".join(lines)


@dataclass
class _Job:
    path: Path
    rel: str
    info: AudioInfo
    key: str
    digest: str
    parts_left: set
    n_windows: int
    notes: list
    failed: bool = False


def _split(starts: np.ndarray, size: int) -> list[np.ndarray]:
    return [starts[i:i + size] for i in range(0, len(starts), size)]


def embed_files(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    audio: AudioSettings = AudioSettings(),
    engine: eng.EngineSettings = eng.EngineSettings(),
    model: EmbeddingModel | None = None,
    csv_dir: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> EmbedSummary:
    """Embed every audio file under ``inputs`` into the store at ``out``."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    if model is None:
        from edgebird.backbones.birdnet import BirdNET

        model = BirdNET(num_threads=engine.threads, batch_size=engine.batch_size)
    if audio.sample_rate != model.sample_rate or audio.segment_samples != model.segment_samples:
        raise ValueError("audio settings do not match the model's sample rate / window")
    echo = echo or (lambda msg: tqdm.write(msg))
    out = Path(out)
    store = EmbeddingStore(out)
    log = ErrorLog(out / "error_log.txt", echo)
    summary = EmbedSummary()
    files, problems = find_audio_files(list(inputs))
    for path, reason in problems:
        log.error(path, reason)
    summary.files = len(files) + len(problems)
    fingerprint = model.fingerprint

    jobs: list[_Job] = []
    tasks: list[eng.Task] = []
    weights: dict[tuple[int, int], int] = {}
    for path, rel in files:
        try:
            info = probe(path)
            digest = store.digest(path)
        except (AudioError, OSError) as exc:
            log.error(str(path), str(exc) if isinstance(exc, AudioError) else _os_reason(exc))
            continue
        key = entry_key(digest, audio.key(), fingerprint)
        entry = store.get(key)
        if entry is not None:
            summary.cached += 1
            summary.entries.append(entry)
            if csv_dir:
                write_embeddings_csv(entry, Path(csv_dir) / (rel + ".embeddings.csv"), str(path))
            continue
        try:
            if audio.crop_mode == "smart":
                grid = window_starts(info.target_samples(audio.sample_rate), audio)
                if len(grid) == 0:
                    planned_starts(info, audio)  # raises the "too short" error
                parts: list[np.ndarray | None] = [None]
                n_windows = len(grid)
            else:
                starts = planned_starts(info, audio)
                parts = _split(starts, engine.chunk_windows)
                n_windows = len(starts)
        except AudioError as exc:
            log.error(str(path), str(exc))
            continue
        notes = notes_for(info, audio)
        for note in notes:
            log.warning(str(path), note)
        done = store.done_parts(key)
        job = _Job(path, rel, info, key, digest, set(range(len(parts))) - done, n_windows, notes)
        jobs.append(job)
        for i, part_starts in enumerate(parts):
            if i in done:
                continue
            tasks.append(eng.Task(len(jobs) - 1, i, info, part_starts))
            weights[(len(jobs) - 1, i)] = n_windows if part_starts is None else len(part_starts)

    def finish(job: _Job) -> None:
        entry = store.commit(job.key, {
            "source": str(job.path.resolve()), "relative": job.rel, "digest": job.digest,
            "duration": job.info.duration, "sample_rate": job.info.sample_rate,
            "channels": job.info.channels, "format": job.info.format,
            "n_windows": job.n_windows, "audio": audio.key(), "model": model.name,
            "model_fingerprint": fingerprint, "embedding_dim": model.embedding_dim,
            "notes": job.notes,
        })
        summary.computed += 1
        summary.audio_seconds += job.info.duration
        summary.entries.append(entry)
        if csv_dir:
            write_embeddings_csv(entry, Path(csv_dir) / (job.rel + ".embeddings.csv"),
                                 str(job.path))

    for job in jobs:  # every part survived an earlier, interrupted run
        if not job.parts_left:
            finish(job)
    bar = tqdm(total=sum(weights.values()), unit="win", disable=not progress,
               desc="embedding", dynamic_ncols=True)
    try:
        for result in eng.run(tasks, model, audio, engine):
            bar.update(weights[(result.job, result.part)])
            job = jobs[result.job]
            if job.failed:
                continue
            if isinstance(result, eng.TaskFailed):
                job.failed = True
                store.abort(job.key)
                log.error(str(job.path), result.reason)
                continue
            store.write_part(job.key, result.part, result.starts / audio.sample_rate,
                             result.embeddings)
            summary.windows += len(result.starts)
            job.parts_left.discard(result.part)
            if not job.parts_left:
                finish(job)
    finally:
        bar.close()
        store.close()
    summary.failed = list(log.errors)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def _os_reason(exc: OSError) -> str:
    return f"cannot read the file ({exc.strerror or exc})"


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
