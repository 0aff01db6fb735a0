"""The parallel engine: many files in, per-window model outputs out, at the model's speed.

Measured on 2 cores: N processes x 1 interpreter thread beat 1 process x N threads by 1.6x,
and with one thread batch size barely matters while memory grows with it. So the engine runs
one worker process per core, each with its own interpreter, decoding and resampling inside
the worker (overlapped with the other worker's inference).

Work units are ``Task``s: one file, or a run of windows of a long file (so one long file
keeps every core busy). A task's result is a pure function of (file, window starts, audio
settings, model): the same function a cluster scheduler can map later (``run_task``). Each
worker batches windows *across* tasks so short files do not waste padded batch slots.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgebird.audio import (
    BLOCK_SECONDS,
    AudioError,
    AudioInfo,
    AudioSettings,
    iter_windows,
    planned_starts,
    smart_starts,
    window_starts,
)
from edgebird.backbones import EmbeddingModel
from edgebird.core.runtime import DEFAULT_BATCH_SIZE
from edgebird.options import opt

#: A worker that stops answering for this long with tasks in hand is treated as dead.
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class EngineSettings:
    """How to spread the work; none of these change results.

    ``workers=0`` picks one process per available core (capped by the number of tasks);
    ``workers=1`` runs in this process.
    """

    workers: int = field(default=0, metadata=opt(
        "--workers", help="worker processes; 0: one per core"))
    threads: int = field(default=1, metadata=opt(
        "--threads", help="interpreter threads per worker; 1 was measured fastest"))
    batch_size: int = field(default=DEFAULT_BATCH_SIZE, metadata=opt(
        "--batch-size", help="windows per model call; more uses memory, not speed"))
    chunk_windows: int = 64
    keep_logits: bool = False

    def resolved_workers(self, n_tasks: int) -> int:
        if self.workers < 0 or self.threads < 1 or self.batch_size < 1 or self.chunk_windows < 1:
            raise ValueError("workers >= 0; threads, batch size and chunk windows >= 1")
        cores = available_cores()
        want = self.workers or max(1, cores // self.threads)
        return max(1, min(want, n_tasks))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Task:
    """One unit of work: ``starts`` (target samples) of one file, or all smart-crop windows."""

    job: int
    part: int
    info: AudioInfo
    starts: np.ndarray | None  # None: choose with the smart crop inside the worker


@dataclass
class PartResult:
    job: int
    part: int
    starts: np.ndarray
    embeddings: np.ndarray
    logits: np.ndarray | None


@dataclass
class TaskFailed:
    job: int
    part: int
    reason: str


@dataclass
class _Open:
    task: Task
    starts: np.ndarray
    embeddings: np.ndarray
    logits: np.ndarray | None
    decoded: bool = False
    filled: int = 0


@dataclass
class WindowBatcher:
    """Collects windows from any number of tasks into fixed-size batches for the model."""

    model: EmbeddingModel
    settings: AudioSettings
    batch_size: int = 8
    keep_logits: bool = False
    _buf: np.ndarray = field(init=False, repr=False)
    _owners: list = field(default_factory=list, init=False)
    _open: dict = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._buf = np.zeros((self.batch_size, self.model.segment_samples), dtype=np.float32)

    def add(self, task: Task) -> Iterator[PartResult]:
        """Decode a task's windows into the batch; yield every part that completes."""
        starts = task.starts
        if starts is None:
            starts = self._smart(task.info)
        key = (task.job, task.part)
        n = len(starts)
        n_labels = len(self.model.labels) if self.keep_logits else 0
        self._open[key] = _Open(
            task, np.asarray(starts, dtype=np.int64),
            np.empty((n, self.model.embedding_dim), dtype=np.float32),
            np.empty((n, n_labels), dtype=np.float32) if self.keep_logits else None,
        )
        for j, (_, window) in enumerate(iter_windows(task.info, self.settings, starts)):
            self._buf[len(self._owners)] = window
            self._owners.append((key, j))
            if len(self._owners) == self.batch_size:
                yield from self._run()
        self._open[key].decoded = True
        yield from self._finished()

    def flush(self) -> Iterator[PartResult]:
        """Run a partial (zero-padded) batch now."""
        if self._owners:
            yield from self._run()
        yield from self._finished()

    def discard(self, task: Task) -> None:
        """Forget a failed task's windows (they may still be computed, never returned)."""
        key = (task.job, task.part)
        self._open.pop(key, None)
        self._owners = [o if o is not None and o[0] != key else None for o in self._owners]

    def _run(self) -> Iterator[PartResult]:
        n = len(self._owners)
        embs, logits = self.model.embed(self._buf[:n] if n < self.batch_size else self._buf)
        for i, owner in enumerate(self._owners):
            if owner is None or owner[0] not in self._open:
                continue
            acc = self._open[owner[0]]
            acc.embeddings[owner[1]] = embs[i]
            if acc.logits is not None:
                acc.logits[owner[1]] = logits[i]
            acc.filled += 1
        self._owners = []
        yield from self._finished()

    def _finished(self) -> Iterator[PartResult]:
        done = [k for k, a in self._open.items() if a.decoded and a.filled == len(a.starts)]
        for key in done:
            a = self._open.pop(key)
            yield PartResult(key[0], key[1], a.starts, a.embeddings, a.logits)

    def _smart(self, info: AudioInfo) -> np.ndarray:
        from edgebird.audio import window_starts

        grid = window_starts(info.target_samples(self.settings.sample_rate), self.settings)
        windows = np.stack([w for _, w in iter_windows(info, self.settings, grid)])
        return smart_starts(windows, grid)


def split_units(starts: np.ndarray, size: int, workers: int, block: int) -> list[np.ndarray]:
    """Cut a file's windows into work units of about ``size`` windows.

    Units follow the decoding grid (whole ``block``s, so no block is decoded twice) and
    their count is a multiple of the number of workers, so one long file ends with every
    worker busy. Any split gives the same numbers (see audio.py); this is only for speed.
    """
    block_of = starts // block
    blocks = np.unique(block_of)
    n_units = -(-len(starts) // size)
    if n_units > 1:
        n_units = min(-(-n_units // workers) * workers, len(blocks))
    groups = np.array_split(blocks, max(1, n_units))
    return [starts[(block_of >= g[0]) & (block_of <= g[-1])] for g in groups if len(g)]


def plan_units(info: AudioInfo, audio: AudioSettings, chunk: int,
                workers: int) -> tuple[list[np.ndarray | None], int]:
    """A file's work units (window starts per unit; None = choose by smart crop in the
    worker) and its window count. Raises AudioError for files too short to use."""
    if audio.crop_mode == "smart":
        grid = window_starts(info.target_samples(audio.sample_rate), audio)
        if len(grid) == 0:
            planned_starts(info, audio)  # raises the "too short" error
        return [None], len(grid)
    starts = planned_starts(info, audio)
    block = BLOCK_SECONDS * audio.sample_rate
    return list(split_units(starts, chunk, workers, block)), len(starts)


def run_task(task: Task, model: EmbeddingModel, settings: AudioSettings,
             batch_size: int = DEFAULT_BATCH_SIZE, keep_logits: bool = False) -> PartResult:
    """One task, start to finish, in this process."""
    return next(run_units([task], model, settings, batch_size, keep_logits))


def run_units(tasks: Sequence[Task], model: EmbeddingModel, settings: AudioSettings,
              batch_size: int = DEFAULT_BATCH_SIZE,
              keep_logits: bool = False) -> Iterator[PartResult]:
    """Several tasks (typically the units of one file) through one batcher in this process,
    so only the very last batch is zero-padded. What a per-file function runs."""
    batcher = WindowBatcher(model, settings, batch_size, keep_logits)
    for task in tasks:
        yield from batcher.add(task)
    yield from batcher.flush()


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, AudioError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory while reading this file"
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _bind_to_parent(parent: int) -> None:
    """A worker lives only as long as the process that started it: when that one is killed
    (``kill -9``, the OOM killer) nothing would stop the worker, which would go on holding
    its model's memory under PID 1. On Linux the kernel kills it (``PR_SET_PDEATHSIG``);
    everywhere, a thread notices the parent change and exits. Ctrl-C is the parent's to
    handle: the worker ignores SIGINT (no traceback per worker) and is stopped by it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl (musl without it)
            pass
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_POLL_SECONDS * 2)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="edgebird-parent-watch", daemon=True).start()


def _worker(model, settings, batch_size, keep_logits, tasks, results, parent=None) -> None:
    """Worker process: load the model, then take tasks until a None arrives;
    flush the partial batch whenever the queue is momentarily empty."""
    pid = os.getpid()
    if parent is not None:
        _bind_to_parent(parent)
    try:
        batcher = WindowBatcher(model, settings, batch_size, keep_logits)
        model.load()  # build the interpreter now, while the parent is still planning
        while True:
            try:
                task = tasks.get(timeout=0.05)
            except queue.Empty:
                for r in batcher.flush():
                    results.put(("part", pid, r))
                continue
            if task is None:
                break
            results.put(("taken", pid, (task.job, task.part)))
            try:
                for r in batcher.add(task):
                    results.put(("part", pid, r))
            except Exception as exc:  # noqa: BLE001 - every file failure is reported, not fatal
                batcher.discard(task)
                results.put(("failed", pid, TaskFailed(task.job, task.part, describe_failure(exc))))
        for r in batcher.flush():
            results.put(("part", pid, r))
    except Exception:  # a model failure: report it so the parent can stop cleanly
        results.put(("fatal", pid, traceback.format_exc()))


#: Workers that may die before taking any work before the pool gives up (see
#: ``WorkerPool._check_start_up``); a crash on a file is retried per task instead.
STILLBORN_LIMIT = 4


def _start_method() -> str:
    """fork where it is safe (Linux, no other threads yet: workers start in milliseconds and
    share the parent's imports); spawn everywhere else (macOS, a GUI's threads)."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn"


class WorkerPool:
    """Worker processes, each with its own model, started before the work is known.

    Starting the pool first lets the workers import, load and warm up the model while the
    caller is still probing and hashing files. ``run`` can be called once per pool.
    A worker that dies (a decoder crash, the OOM killer) is replaced; the tasks it held are
    retried once in a fresh worker, then reported as failed.
    """

    def __init__(self, model: EmbeddingModel, settings: AudioSettings,
                 engine: EngineSettings, n_workers: int):
        model.prepare()  # resolve files once here, not in every worker
        self._ctx = mp.get_context(_start_method())
        self._used = False
        self._args = (model, settings, engine.batch_size, engine.keep_logits)
        self._tasks, self._results = self._ctx.Queue(), self._ctx.Queue()
        self._procs: dict[int, mp.Process] = {}
        self._held: dict[int, set] = {}
        self._heard: set[int] = set()  # workers that sent anything (so got past start-up)
        self._stillborn = 0
        for _ in range(n_workers):
            self._start_worker()

    def _start_worker(self) -> None:
        p = self._ctx.Process(target=_worker, daemon=True,
                              args=(*self._args, self._tasks, self._results, os.getpid()))
        p.start()
        self._procs[p.pid] = p
        self._held[p.pid] = set()

    def run(self, tasks: list[Task]) -> Iterator[PartResult | TaskFailed]:
        """Yield every task's result (or failure) as it completes, in any order."""
        by_key = {(t.job, t.part): t for t in tasks}
        unresolved = set(by_key)
        attempts = dict.fromkeys(by_key, 0)
        self._used = True
        for t in tasks:
            self._tasks.put(t)
        while unresolved:
            try:
                kind, pid, payload = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                self._check_start_up()
                yield from _reap(self._procs, self._held, by_key, unresolved, attempts,
                                 self._tasks, self._start_worker)
                continue
            self._heard.add(pid)
            if kind == "taken":
                self._held[pid].add(payload)
            elif kind == "fatal":
                raise RuntimeError(f"worker failed:\n{payload}")
            else:
                key = (payload.job, payload.part)
                self._held.get(pid, set()).discard(key)
                if key in unresolved:
                    unresolved.discard(key)
                    yield payload

    def _check_start_up(self) -> None:
        """Stop instead of replacing workers for ever when they die before taking any work:
        the usual cause is a script without ``if __name__ == "__main__":`` under the spawn
        start method (each worker re-runs the script, which starts workers, and fails)."""
        dead = [pid for pid, p in self._procs.items()
                if not p.is_alive() and pid not in self._heard]
        self._stillborn += len(dead)
        if self._stillborn >= STILLBORN_LIMIT:
            codes = sorted({self._procs[pid].exitcode for pid in dead})
            self.terminate()
            raise RuntimeError(
                f"{self._stillborn} worker processes exited at start-up (exit code "
                f"{', '.join(map(str, codes))}) before taking any work. If you call edgebird "
                "from a Python script, put the calls under `if __name__ == \"__main__\":` "
                "(worker processes re-import the script); or use --workers 1")

    def close(self) -> None:
        if not self._used:  # never given work (everything was cached): no need to wait
            for p in self._procs.values():
                p.terminate()
        for _ in self._procs:
            self._tasks.put(None)
        for p in self._procs.values():
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._tasks.cancel_join_thread()
        self._results.cancel_join_thread()

    def terminate(self) -> None:
        """Stop at once (a cancelled batch): queued and running units are dropped."""
        for p in self._procs.values():
            p.terminate()
        for p in self._procs.values():
            p.join(timeout=5)
        self._tasks.cancel_join_thread()
        self._results.cancel_join_thread()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # Ctrl-C or an error: do not wait for the queued units
            self.terminate()


def run(tasks: list[Task], model: EmbeddingModel, settings: AudioSettings,
        engine: EngineSettings = EngineSettings(),
        pool: WorkerPool | None = None) -> Iterator[PartResult | TaskFailed]:
    """Run every task and yield its result (or failure) as it completes, in any order.

    Uses ``pool`` if given (the caller closes it); otherwise one worker process per core, or
    this process when one worker is asked for or there is a single task.
    """
    if not tasks:
        return
    if pool is not None:
        yield from pool.run(tasks)
        return
    n_workers = engine.resolved_workers(len(tasks))
    if n_workers == 1:
        yield from _run_inline(tasks, model, settings, engine)
        return
    with WorkerPool(model, settings, engine, n_workers) as own:
        yield from own.run(tasks)


def _reap(procs, held, by_key, unresolved, attempts, task_q, start_worker):
    """Replace dead workers; retry what they held once, then report it as failed."""
    for pid, p in list(procs.items()):
        if p.is_alive():
            continue
        del procs[pid]
        lost = held.pop(pid, set()) & unresolved
        for key in sorted(lost):
            attempts[key] += 1
            if attempts[key] >= 2:
                unresolved.discard(key)
                yield TaskFailed(key[0], key[1],
                                 f"the worker process died (exit code {p.exitcode}) twice while "
                                 "reading this file; it is probably corrupt")
            else:
                task_q.put(by_key[key])
        start_worker()


def _run_inline(tasks, model, settings, engine) -> Iterator[PartResult | TaskFailed]:
    batcher = WindowBatcher(model, settings, engine.batch_size, engine.keep_logits)
    for task in tasks:
        try:
            yield from batcher.add(task)
        except Exception as exc:  # noqa: BLE001
            batcher.discard(task)
            yield TaskFailed(task.job, task.part, describe_failure(exc))
    yield from batcher.flush()
