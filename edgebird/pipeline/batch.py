"""The batch loop ``embed`` and ``analyze`` share: files in, a stream of ``FileOutcome``s out.

A command turns a list of files into outcomes in one of two ways, and books every outcome
with one function (``Ledger.book``: counts, error log, status callbacks), whichever way made it:

* locally (``FileBatch``): worker processes start first (they load the model while files are
  probed), each usable file becomes work units (``engine.plan_units``), the largest units run
  first so no worker idles at the end, every finished unit goes to ``on_part`` and a file whose
  last unit landed to ``finish``, which writes it and says how it went. The first failed unit
  fails its file (``on_failed`` cleans up); its other units are then ignored and the batch
  goes on;
* on a Dask cluster (``cluster.dask.map_files``), one task per file running the command's
  per-file function, a pure function of (file, settings) that returns the same outcomes.

``FileBatch.outcomes(files, progress, dask)`` picks the stream; subclasses say what a file's
plan is (``plan_file``), what a unit's result becomes (store parts, detections), how a file is
finished, and which per-file function (with which settings) the cluster maps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.audio import AudioError, AudioInfo, AudioSettings, probe
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
    cached (embed: the store has it), failed (``reason`` says why), or queued (the local
    batch only: the file is planned, ``seconds`` long). ``warnings`` are the file's notes
    (resampled, mixed down, ...), carried by whichever outcome first knows them."""

    rel: str
    path: str
    status: str
    reason: str = ""
    windows: int = 0
    seconds: float = 0.0
    detections: int = 0
    warnings: list[str] = field(default_factory=list)
    key: str = ""  # embed: the store entry


@dataclass
class RunSummary:
    """What every command's run summary counts: files, failures, audio and time."""

    files: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    windows: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    def audio_line(self, verb: str) -> str:
        """``<verb>: 10 min of audio (200 windows) in 3.5 s (170x realtime)``; callers say
        something else when no window ran (a 0x speed reads as a fault)."""
        speed = self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        return (f"{verb}: {duration_text(self.audio_seconds)} of audio ({self.windows} windows)"
                f" in {duration_text(self.wall_seconds)} ({speed:.0f}x realtime)")


def duration_text(seconds: float) -> str:
    """A duration as a person reads it: ``2.5 s``, ``25 s``, ``4 min 10 s``, ``1.2 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{seconds / 3600:.1f} h"


def guarded(rel: str, path: str, work: Callable[[], FileOutcome]) -> FileOutcome:
    """``work()``, with any error that escapes it turned into a failed outcome: one file's
    problem (or a bug it triggers) must not take down a worker's whole share of a batch."""
    try:
        return work()
    except (AudioError, OSError) as exc:
        return FileOutcome(rel, path, "failed", file_problem(exc))
    except Exception as exc:  # noqa: BLE001 - reported per file, the batch goes on
        return FileOutcome(rel, path, "failed", eng.describe_failure(exc))


class Ledger:
    """Books one command's outcomes, whichever stream made them: warnings and failures into
    the error log, every status to ``notify``; ``count`` (the command's) books the rest."""

    def __init__(self, log: ErrorLog, notify: Notify | None = None):
        self.log = log
        self.notify: Notify = notify or (lambda rel, status, detail: None)

    def book(self, o: FileOutcome) -> None:
        if o.status == "queued":
            self.notify(o.rel, "queued", f"{o.seconds:.1f} s")
        for note in o.warnings:
            self.log.warning(o.path, note)
        if o.status == "failed":
            self.log.error(o.path, o.reason)
            self.notify(o.rel, "failed", o.reason)
        elif o.status != "queued":
            self.count(o)

    def count(self, o: FileOutcome) -> None:
        """A file that is done (or skipped, or cached)."""
        raise NotImplementedError


@dataclass
class FileJob:
    """One file of a batch and the units of it still to come."""

    path: Path
    rel: str
    info: AudioInfo
    parts_left: set
    n_windows: int
    failed: bool = False
    notes: list = field(default_factory=list)


class FileBatch:
    """Plan, run and route one batch. ``desc`` labels the progress bar; ``per_file`` is the
    command's pure per-file function, mapped by a cluster with ``per_file_kwargs()``."""

    desc = "processing"
    per_file: Callable[..., FileOutcome] | None = None
    #: A command whose long files a cluster may cut into time chunks gives the pure
    #: per-chunk function here (``analyze.analyze_part``) and implements ``cluster_parts``
    #: and ``assemble``; None: one task per file (``embed``: a store entry is one file).
    per_part: Callable[..., list] | None = None

    def __init__(self, model: EmbeddingModel, audio: AudioSettings,
                 engine: eng.EngineSettings, cancel: threading.Event | None = None):
        self.model, self.audio, self.engine = model, audio, engine
        self.cancel = cancel
        self.jobs: list[FileJob] = []
        self.tasks: list[eng.Task] = []
        self.weights: dict[tuple[int, int], int] = {}
        self.n_workers = engine.resolved_workers(2**31)
        self.pool: eng.WorkerPool | None = None

    def outcomes(self, files: list[tuple[Path, str]], progress: bool,
                 dask: str | None = None) -> Iterator[FileOutcome]:
        """Every file's outcome as it comes: from a Dask cluster (``dask``: a scheduler
        address or ``local[:N]``) running ``per_file``, else from the local engine."""
        if dask:
            from edgebird.cluster.dask import DaskTarget, map_files

            target = DaskTarget.parse(dask, self.engine.threads)
            return map_files(target, type(self).per_file, files, self.model,
                             self.per_file_kwargs(), progress, self.desc,
                             split=self if type(self).per_part else None)
        return self.run_local(files, progress)

    def cluster_parts(self, path: Path, workers: int) -> tuple[AudioInfo, list, int] | None:
        """A long file's chunks for a cluster of ``workers`` (the local engine's units, on
        the same block grid), with its info and window count; None: one task for the file."""
        return None

    def per_part_kwargs(self) -> dict:
        """What ``per_part`` needs besides the file, its chunk and the model."""
        raise NotImplementedError

    def assemble(self, path: str, rel: str, info: AudioInfo, n_windows: int,
                 parts: list[list]) -> FileOutcome:
        """The file's outcome from its chunks' results, in chunk order (on the client)."""
        raise NotImplementedError

    def per_file_kwargs(self) -> dict:
        """What ``per_file`` needs besides the file and the model (paths made absolute:
        cluster workers have other working directories)."""
        raise NotImplementedError

    def run_local(self, files: list[tuple[Path, str]], progress: bool) -> Iterator[FileOutcome]:
        """The local batch: workers started, each file planned (a file with nothing to run
        has its outcome at once), then every unit executed."""
        if files:
            self.start_workers(len(files))
        for path, rel in files:
            try:
                planned = self.plan_file(path, rel, probe(path))
            except (AudioError, OSError) as exc:
                yield FileOutcome(rel, str(path), "failed", file_problem(exc))
                continue
            if isinstance(planned, FileOutcome):
                yield planned
                continue
            job, units = planned
            yield FileOutcome(rel, str(path), "queued", seconds=job.info.duration,
                              warnings=list(job.notes))
            self.add(job, units)
            if not job.parts_left:  # every part kept from an interrupted run
                yield self.finish(job)
        yield from self.execute(progress)

    def start_workers(self, n_files: int) -> None:
        """Workers load the model while the caller probes files (stopped unused if every
        file turns out to be done already). Not for a single file: it may be one unit,
        which runs right here, and ``engine.run`` starts workers itself if it is more."""
        if self.n_workers > 1 and n_files > 1:
            self.pool = eng.WorkerPool(self.model, self.audio, self.engine, self.n_workers)

    def plan_units(self, info: AudioInfo) -> tuple[list[np.ndarray | None], int]:
        return eng.plan_units(info, self.audio, self.engine.chunk_windows, self.n_workers)

    def add(self, job: FileJob, units: list[np.ndarray | None]) -> None:
        """Queue the units of ``job`` that are in ``job.parts_left``."""
        self.jobs.append(job)
        index = len(self.jobs) - 1
        for i, starts in enumerate(units):
            if i in job.parts_left:
                self.tasks.append(eng.Task(index, i, job.info, starts))
                self.weights[(index, i)] = job.n_windows if starts is None else len(starts)

    def execute(self, progress: bool) -> Iterator[FileOutcome]:
        from tqdm import tqdm

        tasks = sorted(self.tasks, key=lambda t: -self.weights[(t.job, t.part)])
        if self.pool is None and len(tasks) > 1 and self.n_workers > 1:
            # Before the progress bar: its monitor thread would force the slow 'spawn' start.
            self.pool = eng.WorkerPool(self.model, self.audio, self.engine,
                                       min(self.n_workers, len(tasks)))
        pool = self.pool if len(tasks) > 1 else None  # one unit: run it right here
        # No bar when nothing runs: an empty one printed "0win" at start and end.
        with tqdm(total=sum(self.weights.values()), unit="win", disable=not progress or not tasks,
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
                    self.on_failed(job)
                    yield FileOutcome(job.rel, str(job.path), "failed", result.reason)
                    continue
                self.on_part(job, result)
                job.parts_left.discard(result.part)
                if not job.parts_left:
                    yield self.finish(job)

    def plan_file(self, path: Path, rel: str, info: AudioInfo
                  ) -> FileOutcome | tuple[FileJob, list[np.ndarray | None]]:
        """What to do with one probed file: its outcome at once (nothing to run), or a job
        and all its units (``None``: the whole file in one unit). AudioError or OSError
        fail just that file."""
        raise NotImplementedError

    def on_part(self, job: FileJob, result: eng.PartResult) -> None:
        raise NotImplementedError

    def finish(self, job: FileJob) -> FileOutcome:
        """The file's last unit landed: write what it makes, say how that went."""
        raise NotImplementedError

    def on_failed(self, job: FileJob) -> None:
        """A unit of ``job`` failed: drop what its other units left (the outcome says why)."""

    def close(self, aborted: bool = False) -> None:
        """Stop the workers: at once when the batch was cancelled or ``aborted`` (Ctrl-C,
        an error: queued units are dropped, finished files are on disk), else when they
        have finished."""
        if self.pool is not None:
            if aborted or (self.cancel is not None and self.cancel.is_set()):
                self.pool.terminate()
            else:
                self.pool.close()

    def __enter__(self) -> FileBatch:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(aborted=exc_type is not None)
