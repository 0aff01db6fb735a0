"""The batch loop ``embed`` and ``analyze`` share: files in, per-file results out.

A batch starts its worker processes first (they load the model while files are probed),
turns each usable file into work units (``engine.plan_units``), runs the largest units first
so no worker idles at the end, and hands every finished unit to ``on_part`` and every finished
file to ``on_done``. The first failed unit fails its file (``on_failed``); the file's other
units are then ignored and the batch goes on. Subclasses say what a unit's result becomes
(store parts, detections) and what a finished file writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.audio import AudioError, AudioInfo, AudioSettings
from edgebird.backbones import EmbeddingModel
from edgebird.pipeline import engine as eng
from edgebird.pipeline.errorlog import ErrorLog


class Cancelled(Exception):
    """The batch was cancelled; files finished before are complete on disk."""


#: ``notify(relative name, status, detail)``: status is queued, done, skipped or failed.
Notify = Callable[[str, str, str], None]


def file_problem(exc: AudioError | OSError) -> str:
    """The reason logged for a file that cannot be used."""
    if isinstance(exc, AudioError):
        return str(exc)
    return f"cannot read the file ({exc.strerror or exc})"


@dataclass
class FileOutcome:
    """What one file's work came to, as a per-file function returns it: small and picklable,
    so a cluster worker can send it back. ``status``: done, skipped (analyze: results exist),
    cached (embed: the store has it) or failed (``reason`` says why)."""

    rel: str
    path: str
    status: str
    reason: str = ""
    windows: int = 0
    seconds: float = 0.0
    detections: int = 0
    warnings: list[str] = field(default_factory=list)
    key: str = ""  # embed: the store entry


def guarded(rel: str, path: str, work: Callable[[], FileOutcome]) -> FileOutcome:
    """``work()``, with any error that escapes it turned into a failed outcome: one file's
    problem (or a bug it triggers) must not take down a worker's whole share of a batch."""
    try:
        return work()
    except (AudioError, OSError) as exc:
        return FileOutcome(rel, path, "failed", file_problem(exc))
    except Exception as exc:  # noqa: BLE001 - reported per file, the batch goes on
        return FileOutcome(rel, path, "failed", eng.describe_failure(exc))


@dataclass
class FileJob:
    """One file of a batch and the units of it still to come."""

    path: Path
    rel: str
    info: AudioInfo
    parts_left: set
    n_windows: int
    failed: bool = False


class FileBatch:
    """Plan, run and route one batch. ``desc`` labels the progress bar."""

    desc = "processing"

    def __init__(self, model: EmbeddingModel, audio: AudioSettings,
                 engine: eng.EngineSettings, log: ErrorLog, notify: Notify | None = None,
                 cancel: threading.Event | None = None):
        self.model, self.audio, self.engine, self.log = model, audio, engine, log
        self.notify: Notify = notify or (lambda rel, status, detail: None)
        self.cancel = cancel
        self.jobs: list[FileJob] = []
        self.tasks: list[eng.Task] = []
        self.weights: dict[tuple[int, int], int] = {}
        self.n_workers = engine.resolved_workers(2**31)
        self.pool: eng.WorkerPool | None = None

    def start_workers(self, n_files: int) -> None:
        """Workers load the model while the caller probes files (stopped unused if every
        file turns out to be done already). Not for a single file: it may be one unit,
        which runs right here, and ``engine.run`` starts workers itself if it is more."""
        if self.n_workers > 1 and n_files > 1:
            self.pool = eng.WorkerPool(self.model, self.audio, self.engine, self.n_workers)

    def plan_units(self, info: AudioInfo) -> tuple[list[np.ndarray | None], int]:
        return eng.plan_units(info, self.audio, self.engine.chunk_windows, self.n_workers)

    def add(self, job: FileJob, units: list[np.ndarray | None]) -> None:
        """Queue the units of ``job`` that are in ``job.parts_left``; a job with nothing left
        (all parts kept from an interrupted run) is finished at once."""
        self.jobs.append(job)
        index = len(self.jobs) - 1
        for i, starts in enumerate(units):
            if i in job.parts_left:
                self.tasks.append(eng.Task(index, i, job.info, starts))
                self.weights[(index, i)] = job.n_windows if starts is None else len(starts)
        if not job.parts_left:
            self.on_done(job)

    def run_files(self, files: list[tuple[Path, str]], plan: Callable[[Path, str], None],
                  progress: bool, start_workers: bool = True) -> None:
        """The local batch: workers started (unless told there is nothing to do), each file
        planned by ``plan`` (which calls ``add``), then everything executed."""
        if files and start_workers:
            self.start_workers(len(files))
        for path, rel in files:
            plan(path, rel)
        self.execute(progress)

    def execute(self, progress: bool) -> None:
        from tqdm import tqdm

        tasks = sorted(self.tasks, key=lambda t: -self.weights[(t.job, t.part)])
        if self.pool is None and len(tasks) > 1 and self.n_workers > 1:
            # Before the progress bar: its monitor thread would force the slow 'spawn' start.
            self.pool = eng.WorkerPool(self.model, self.audio, self.engine,
                                       min(self.n_workers, len(tasks)))
        pool = self.pool if len(tasks) > 1 else None  # one unit: run it right here
        with tqdm(total=sum(self.weights.values()), unit="win", disable=not progress,
                  desc=self.desc, dynamic_ncols=True) as bar:
            for result in eng.run(tasks, self.model, self.audio, self.engine, pool):
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled("cancelled; finished files are kept, run again to resume")
                bar.update(self.weights[(result.job, result.part)])
                job = self.jobs[result.job]
                if job.failed:
                    continue
                if isinstance(result, eng.TaskFailed):
                    job.failed = True
                    self.on_failed(job, result.reason)
                    continue
                self.on_part(job, result)
                job.parts_left.discard(result.part)
                if not job.parts_left:
                    self.on_done(job)

    def on_part(self, job: FileJob, result: eng.PartResult) -> None:
        raise NotImplementedError

    def on_done(self, job: FileJob) -> None:
        raise NotImplementedError

    def on_failed(self, job: FileJob, reason: str) -> None:
        self.log.error(str(job.path), reason)
        self.notify(job.rel, "failed", reason)

    def close(self) -> None:
        if self.pool is not None:
            if self.cancel is not None and self.cancel.is_set():
                self.pool.terminate()
            else:
                self.pool.close()
