"""Benchmark ``edgebird embed`` against the speed of the BirdNET model alone.

What is measured, and why:

(a) The CEILING. ``BirdNET(num_threads=T, batch_size=B).embed()`` on pre-generated random
    float32 windows ``[n, 144000]`` in P spawned worker processes (P x T <= cores), each timing
    a fixed number of windows after one warm-up invoke, all starting together. Nothing but the
    model runs, so the best (P, T, B) is the fastest any embedding pipeline on this machine
    can be. Reported as aggregate windows/s, x realtime (a window is 3 s of audio) and ms per
    segment (wall / windows), plus each worker's load + warm-up time and peak RSS.

(b) ``edgebird embed`` as a WHOLE PROCESS: the CLI in a subprocess with a fresh store each
    run (no cache hits), ``-q``, default settings, on 20 x 60 s synthetic WAV files (44.1 and
    48 kHz, some stereo) and on one 30-minute WAV. Wall time includes everything a user waits
    for: interpreter start-up, imports, hashing, spawning workers, model loading, decoding,
    resampling, inference and writing the store. Reported as x realtime, ms per segment, the
    ratio to the ceiling, and the peak RSS of the process tree (parent + workers summed,
    sampled every 50 ms) and of the largest single process. A second run on the same store
    (all cache hits) is timed too.

(c) Memory does not grow with file length: the same measurement on a 10-minute file,
    compared with the 30-minute one. The two file lengths also give the fixed cost and the
    marginal speed of ``embed`` (wall = fixed + windows x marginal).

Targets (from the issue): ``embed`` >= 0.9 x the ceiling; peak RSS <= 600 MB on the
30-minute file, not growing with file length. MB here is 10^6 bytes.

Every whole-process measurement is repeated ``--runs`` times (default 3) and the median is
reported. Results are printed as markdown and written between the ``bench_embed`` markers of
``docs/BENCHMARKS.md`` (other benchmark scripts own other sections of that file).

Run: ``python bench/bench_embed.py`` (full, a few minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "out"
DOCS = ROOT / "docs" / "BENCHMARKS.md"
MARK_START = "<!-- bench_embed:start -->"
MARK_END = "<!-- bench_embed:end -->"

WINDOW_SECONDS = 3.0
SEGMENT_SAMPLES = 144_000
MB = 1e6
SAMPLE_SECONDS = 0.05

#: A measurement during which other processes (or the hypervisor's steal time) used more than
#: this share of the machine's CPU is repeated, up to ``--retries`` times, then flagged.
OTHER_LOAD_LIMIT = 0.05

TARGET_RATIO = 0.9
TARGET_RSS_MB = 600.0

#: The configuration ``edgebird embed`` uses by default on a 2-core machine.
EMBED_DEFAULT = (2, 1, 8)


# -- machine -----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def source_state() -> str:
    """The code being measured: git commit, whether edgebird/ has uncommitted changes, and a
    hash of edgebird/'s Python sources (so a result can be matched to the exact code)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "edgebird").rglob("*.py")):
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "edgebird"], capture_output=True, text=True, check=True).stdout
        commit += " + uncommitted changes in edgebird/" if dirty.strip() else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown commit"
    return f"{commit}, sources sha256 {h.hexdigest()[:12]}"


def machine_info() -> dict[str, str]:
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": cpu_model(),
        "cores": str(cores()),
        "memory": mem,
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "ai-edge-litert": version_of("ai-edge-litert"),
        "edgebird": version_of("edgebird"),
        "source": source_state(),
    }


class OtherLoad:
    """Context manager: the CPU time that processes *other* than this one and its (waited-for)
    descendants used meanwhile, including hypervisor steal, as a share of all cores x wall.

    Timings are only as good as an otherwise idle machine; this makes a busy one visible.
    """

    share: float = 0.0

    @staticmethod
    def _busy() -> float:
        import psutil

        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        guest = getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)  # already in user
        return sum(t) - idle - guest

    @staticmethod
    def _own() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def __enter__(self) -> OtherLoad:
        self._t0, self._busy0, self._own0 = time.monotonic(), self._busy(), self._own()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._t0
        other = (self._busy() - self._busy0) - (self._own() - self._own0)
        self.share = max(0.0, other) / max(wall * cores(), 1e-9)


# -- (a) ceiling: the model alone ------------------------------------------------------------
@dataclass
class CeilingResult:
    processes: int
    threads: int
    batch: int
    windows: int
    wall: float
    load_warmup: float  # slowest worker: build interpreter + first invoke
    worker_rss_mb: float  # largest worker's peak RSS, minus its input array
    other_load: float = 0.0  # share of the machine other processes used meanwhile

    @property
    def windows_per_s(self) -> float:
        return self.windows / self.wall

    @property
    def x_realtime(self) -> float:
        return self.windows_per_s * WINDOW_SECONDS

    @property
    def ms_per_segment(self) -> float:
        return 1000 * self.wall / self.windows


def peak_rss_bytes() -> int:
    """This process's peak RSS. VmHWM rather than ru_maxrss: on Linux ru_maxrss survives exec,
    so a process started by a larger one (a subprocess, a spawned worker) would report the
    larger one's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _ceiling_worker(threads: int, batch: int, n_windows: int, seed: int, barrier, results) -> None:
    """Spawned worker: build the model, warm up once, wait for the others, time n windows."""
    from edgebird.backbones.birdnet.model import BirdNET

    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_windows, SEGMENT_SAMPLES), dtype=np.float32)
    data *= 0.1
    t0 = time.monotonic()
    model = BirdNET(num_threads=threads, batch_size=batch, split_frontend=False)  # the model alone
    model.embed(data[:batch])  # loads the interpreter; one warm-up invoke
    warm = time.monotonic() - t0
    barrier.wait()
    start = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes on Linux
    model.embed(data)
    end = time.monotonic()
    peak = peak_rss_bytes()
    results.put((start, end, warm, (peak - data.nbytes) / MB))  # the model's, not the input's


def measure_ceiling(processes: int, threads: int, batch: int, windows_per_worker: int,
                    timeout: float = 600.0) -> CeilingResult:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    n = max(batch, windows_per_worker // batch * batch)  # whole batches only: no padding
    procs = [ctx.Process(target=_ceiling_worker, args=(threads, batch, n, i, barrier, results))
             for i in range(processes)]
    with OtherLoad() as load:
        for p in procs:
            p.start()
        got = [results.get(timeout=timeout) for _ in procs]
        for p in procs:
            p.join(timeout=30)
            if p.exitcode != 0:
                raise RuntimeError(f"ceiling worker failed (exit code {p.exitcode})")
    wall = max(g[1] for g in got) - min(g[0] for g in got)
    return CeilingResult(processes, threads, batch, n * processes, wall,
                         max(g[2] for g in got), max(g[3] for g in got), load.share)


def ceiling_grid(quick: bool) -> list[tuple[int, int, int]]:
    batches = (1, 8) if quick else (1, 4, 8, 16, 32)
    grid = []
    for p in (1, 2):
        for t in (1, 2):
            if p * t > cores():
                continue
            grid += [(p, t, b) for b in batches]
    return grid


# -- audio -------------------------------------------------------------------------------------
def _matches(path: Path, rate: int, channels: int, frames: int) -> bool:
    import soundfile as sf

    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except RuntimeError:
        return False
    return (info.samplerate, info.channels, info.frames) == (rate, channels, frames)


def _minute(rng: np.random.Generator, index: int, rate: int, seconds: float = 60.0) -> np.ndarray:
    """One stretch of synthetic soundscape: pink noise with bird-like calls (or none)."""
    from edgebird.synth import SONGS, clip

    songs: list[str | None] = [*SONGS, None]
    return clip(songs[index % len(songs)], rng, seconds=seconds, sr=rate, calls=12)


def make_short_files(folder: Path, count: int = 20, seconds: float = 60.0) -> list[Path]:
    """``count`` files of ``seconds``: even ones 44.1 kHz, odd ones 48 kHz, every third stereo.
    Files that already exist with the right shape are reused (the content is seeded)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        rate = 44100 if i % 2 == 0 else 48000
        channels = 2 if i % 3 == 0 else 1
        path = folder / f"clip_{i:02d}_{rate // 1000}k_{'stereo' if channels == 2 else 'mono'}.wav"
        frames = int(seconds * rate)
        if not _matches(path, rate, channels, frames):
            rng = np.random.default_rng(1000 + i)
            x = _minute(rng, i, rate, seconds)
            if channels == 2:
                other = 0.7 * x + 0.005 * rng.standard_normal(len(x)).astype(np.float32)
                x = np.stack([x, other], axis=1)
            sf.write(path, x, rate, subtype="PCM_16")
        paths.append(path)
    return paths


def make_long_file(path: Path, minutes: int, rate: int = 44100) -> Path:
    """A mono ``minutes``-long file written one minute at a time (never held whole)."""
    import soundfile as sf

    if _matches(path, rate, 1, minutes * 60 * rate):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(minutes)
    tmp = path.with_suffix(".part.wav")
    with sf.SoundFile(tmp, "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for m in range(minutes):
            f.write(_minute(rng, m, rate))
    os.replace(tmp, path)
    return path


def count_windows(paths: list[Path]) -> tuple[int, float]:
    """Windows ``embed`` computes with default settings, and the audio seconds."""
    from edgebird.audio import AudioSettings, planned_starts, probe

    settings = AudioSettings()
    windows, seconds = 0, 0.0
    for p in paths:
        info = probe(p)
        windows += len(planned_starts(info, settings))
        seconds += info.duration
    return windows, seconds


# -- (b), (c) whole process --------------------------------------------------------------------
@dataclass
class ProcessRun:
    wall: float
    peak_tree_rss_mb: float
    peak_single_rss_mb: float
    peak_tree_pss_mb: float
    max_processes: int
    stdout: str
    other_load: float


class TreeSampler(threading.Thread):
    """Every ``SAMPLE_SECONDS``, sum the RSS of a process and all its descendants; keep the max."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._stop_event = threading.Event()
        self.peak_tree = 0
        self.peak_single = 0
        self.peak_pss = 0
        self._samples = 0
        self.max_processes = 0

    def sample(self) -> None:
        psutil = self._psutil
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total, alive, pss = 0, 0, 0
        # Reading smaps for PSS costs CPU on the cores being measured: every 10th sample.
        with_pss = self._samples % 10 == 0
        self._samples += 1
        for p in procs:
            try:
                rss = p.memory_info().rss
                # PSS splits pages shared between processes (forked workers share the
                # parent's imports copy-on-write; all map one model file) fairly among them.
                if with_pss:
                    pss += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            total += rss
            alive += 1
            self.peak_single = max(self.peak_single, rss)
        self.peak_tree = max(self.peak_tree, total)
        self.peak_pss = max(self.peak_pss, pss)
        self.max_processes = max(self.max_processes, alive)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def embed_command() -> list[str]:
    script = Path(sys.executable).with_name("edgebird")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edgebird"]


def run_embed(inputs: list[Path], store: Path) -> ProcessRun:
    return run_process([*embed_command(), "embed", *map(str, inputs), "-o", str(store), "-q"])


def run_process(cmd: list[str]) -> ProcessRun:
    """Run ``cmd`` to completion, sampling its process tree's memory; raise if it fails."""
    with OtherLoad() as load:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        sampler.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{out}")
    return ProcessRun(wall, sampler.peak_tree / MB, sampler.peak_single / MB,
                      sampler.peak_pss / MB, sampler.max_processes, out, load.share)


class Throughput:
    """Speed figures of a benchmark case from its median wall time (a case defines
    ``median``, ``audio_seconds`` and ``windows``)."""

    @property
    def wall(self) -> float:
        return self.median("wall")

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.wall

    @property
    def ms_per_segment(self) -> float:
        return 1000 * self.wall / self.windows


@dataclass
class EmbedCase(Throughput):
    name: str
    inputs: list[Path]
    windows: int
    audio_seconds: float
    runs: list[ProcessRun] = field(default_factory=list)
    cache_runs: list[ProcessRun] = field(default_factory=list)

    def median(self, attr: str, cache: bool = False) -> float:
        runs = self.cache_runs if cache else self.runs
        return statistics.median(getattr(r, attr) for r in runs)



def measure_case(case: EmbedCase, stores: Path, runs: int, retries: int) -> None:
    for i in range(runs):
        store = stores / f"{case.name}-{i}"
        for attempt in range(retries + 1):
            shutil.rmtree(store, ignore_errors=True)
            first = run_embed(case.inputs, store)
            if first.other_load <= OTHER_LOAD_LIMIT or attempt == retries:
                break
            print(f"  {case.name} run {i + 1}: other processes used "
                  f"{100 * first.other_load:.0f}% of the CPU; measuring again", flush=True)
        m = re.search(r"in (\d+) windows", first.stdout)
        if not m or int(m.group(1)) != case.windows or not re.search(r"\b0 failed",
                                                                      first.stdout):
            raise RuntimeError(f"unexpected embed output for {case.name}:\n{first.stdout}")
        case.runs.append(first)
        again = run_embed(case.inputs, store)
        if f"{len(case.inputs)} from the store" not in again.stdout:
            raise RuntimeError(f"second run was not all cache hits:\n{again.stdout}")
        case.cache_runs.append(again)
        shutil.rmtree(store, ignore_errors=True)
        print(f"  {case.name} run {i + 1}/{runs}: {first.wall:.2f} s, "
              f"peak tree RSS {first.peak_tree_rss_mb:.0f} MB, cache hit {again.wall:.2f} s, "
              f"other CPU {100 * first.other_load:.0f}%", flush=True)


# -- report ------------------------------------------------------------------------------------
def _fmt_list(values: list[float], digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def render(info: dict[str, str], ceiling: list[CeilingResult], cases: list[EmbedCase],
           runs: int, quick: bool) -> str:
    best = max(ceiling, key=lambda r: r.windows_per_s)
    default = next((r for r in ceiling if (r.processes, r.threads, r.batch) == EMBED_DEFAULT),
                   None)
    lines = [
        "## `edgebird embed` vs the model alone",
        "",
        f"Generated by `python bench/bench_embed.py{' --quick' if quick else ''}` on "
        f"{info['date']}: {info['cpu']}, {info['cores']} cores, {info['memory']}, "
        f"Python {info['python']}, numpy {info['numpy']}, ai-edge-litert "
        f"{info['ai-edge-litert']}, edgebird {info['edgebird']} ({info['source']}).",
        "",
        "### Ceiling: BirdNET alone (random windows, `BirdNET.embed`, XNNPACK)",
        "",
        "P worker processes x T interpreter threads, batch B; each worker times "
        f"{ceiling[0].windows // ceiling[0].processes if ceiling else 0} windows (rounded down "
        "to whole batches) after one warm-up invoke, all starting together. "
        "Load + warm-up is building the interpreter and the first invoke (slowest worker); "
        "worker peak RSS leaves out the worker's own array of random input windows.",
        "",
        "| P | T | B | windows | wall s | windows/s | x realtime | ms/segment "
        "| load + warm-up s | worker peak RSS MB | other CPU % |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in ceiling:
        mark = " **best**" if r is best else (" (embed's default)" if r is default else "")
        lines.append(
            f"| {r.processes} | {r.threads} | {r.batch}{mark} | {r.windows} | {r.wall:.2f} | "
            f"{r.windows_per_s:.1f} | {r.x_realtime:.0f} | {r.ms_per_segment:.1f} | "
            f"{r.load_warmup:.2f} | {r.worker_rss_mb:.0f} | {100 * r.other_load:.0f} |")
    lines += [
        "",
        f"**Ceiling: {best.x_realtime:.0f}x realtime, {best.ms_per_segment:.1f} ms/segment** "
        f"(P={best.processes}, T={best.threads}, B={best.batch}).",
        "",
        "### `edgebird embed`, whole process",
        "",
        f"The CLI in a subprocess (`edgebird embed INPUT... -o STORE -q`, default settings: "
        f"one worker per core, 1 thread, batch 4), a fresh store each run; median of {runs} "
        f"run(s). Peak RSS is sampled every 50 ms: *tree* sums the parent and every child "
        f"process (up to {max(r.max_processes for c in cases for r in c.runs)} at once: the "
        "CLI, its workers and multiprocessing's resource tracker); *single* is the largest "
        "one process; *tree PSS* (sampled every 0.5 s, as reading it costs CPU) is the "
        "tree's proportional set size, which counts a page "
        "shared by k processes as 1/k in each (the memory the run really occupies). "
        "Cache hit: the same command again on the finished store. *Other CPU* "
        "is the largest share of the machine that other processes (or hypervisor steal) used "
        f"during a run; runs above {100 * OTHER_LOAD_LIMIT:.0f}% are repeated.",
        "",
        "| input | audio | windows | wall s | x realtime | ms/segment | vs ceiling "
        "| vs same config | peak tree RSS MB | peak tree PSS MB | peak single RSS MB "
        "| cache hit s | other CPU % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in cases:
        ratio = c.x_realtime / best.x_realtime
        same = f"{c.x_realtime / default.x_realtime:.2f}" if default else "n/a"
        lines.append(
            f"| {c.name} | {c.audio_seconds / 60:.0f} min | {c.windows} | {c.wall:.2f} | "
            f"{c.x_realtime:.0f} | {c.ms_per_segment:.1f} | {ratio:.2f} | {same} | "
            f"{c.median('peak_tree_rss_mb'):.0f} | {c.median('peak_tree_pss_mb'):.0f} | "
            f"{c.median('peak_single_rss_mb'):.0f} | "
            f"{c.median('wall', cache=True):.2f} | "
            f"{100 * max(r.other_load for r in c.runs):.0f} |")
    lines += ["", "Every run (wall s; peak tree RSS MB; cache-hit wall s):", ""]
    for c in cases:
        lines.append(
            f"- {c.name}: {_fmt_list([r.wall for r in c.runs])}; "
            f"{_fmt_list([r.peak_tree_rss_mb for r in c.runs], 0)}; "
            f"{_fmt_list([r.wall for r in c.cache_runs])}")
    lines += ["", "### Targets", ""]
    loads = [r.other_load for r in ceiling] + [r.other_load for c in cases for r in c.runs]
    if max(loads) > OTHER_LOAD_LIMIT:
        lines.append(f"- **Caution: other processes used up to {100 * max(loads):.0f}% of the "
                     "CPU during some measurements (see *other CPU*); those numbers are low.**")
    ok = "met" if all(c.x_realtime / best.x_realtime >= TARGET_RATIO for c in cases) else "NOT met"
    worst = min(cases, key=lambda c: c.x_realtime)
    lines.append(
        f"- `embed` >= {TARGET_RATIO}x the ceiling: **{ok}** (lowest: {worst.name}, "
        f"{worst.x_realtime / best.x_realtime:.2f}x).")
    by_name = {c.name: c for c in cases}
    long30, long10 = by_name.get("1 x 30 min"), by_name.get("1 x 10 min")
    if long30:
        rss = long30.median("peak_tree_rss_mb")
        lines.append(
            f"- Peak RSS <= {TARGET_RSS_MB:.0f} MB on the 30-minute file (process tree): "
            f"**{'met' if rss <= TARGET_RSS_MB else 'NOT met'}** ({rss:.0f} MB summed RSS, "
            f"{long30.median('peak_tree_pss_mb'):.0f} MB PSS; largest single "
            f"process {long30.median('peak_single_rss_mb'):.0f} MB).")
    if long30 and long10:
        r10, r30 = long10.median("peak_tree_rss_mb"), long30.median("peak_tree_rss_mb")
        grows = r30 > r10 * 1.1 + 20
        lines.append(
            f"- Peak RSS does not grow with file length: **{'NOT met' if grows else 'met'}** "
            f"(10 min: {r10:.0f} MB, 30 min: {r30:.0f} MB).")
        marginal = (long30.wall - long10.wall) / (long30.windows - long10.windows)
        fixed = long30.wall - long30.windows * marginal
        if marginal > 0:
            lines.append(
                f"- From the 10- and 30-minute files, wall = fixed + windows x marginal: "
                f"fixed ~{fixed:.2f} s per invocation, marginal {1000 * marginal:.1f} ms/segment "
                f"({WINDOW_SECONDS / marginal:.0f}x realtime, "
                f"{WINDOW_SECONDS / marginal / best.x_realtime:.2f}x the ceiling).")
    return "\n".join(lines)


def intro(info: dict[str, str]) -> str:
    return "\n".join([
        "# Benchmarks",
        "",
        "Speed and memory of edgebird, measured by the scripts in `bench/`. Each script "
        "regenerates its own section of this file (between its `<!-- name:start -->` and "
        "`<!-- name:end -->` markers) and leaves the rest alone; every section states the "
        "machine and date it was measured on.",
        "",
        "This file was first created on:",
        "",
        f"- date: {info['date']}",
        f"- CPU: {info['cpu']}, {info['cores']} cores, {info['memory']} RAM",
        f"- OS: {info['os']}",
        f"- Python {info['python']}, numpy {info['numpy']}, "
        f"ai-edge-litert {info['ai-edge-litert']}",
        "",
        "To rerun (from the repository root, in the environment where edgebird is installed):",
        "",
        "```",
        "python bench/bench_embed.py            # full: a few minutes on 2 cores",
        "python bench/bench_embed.py --quick    # smaller grid, one run each",
        "```",
        "",
        "Generated audio and temporary stores go to `bench/out/` (git-ignored).",
        "",
    ])


def write_docs(section: str, info: dict[str, str], path: Path = DOCS,
               start: str = MARK_START, end: str = MARK_END) -> None:
    """Replace one script's section of BENCHMARKS.md (between its markers), or append it;
    the rest of the file stays as it is."""
    block = f"{start}\n{section}\n{end}"
    text = path.read_text(encoding="utf-8") if path.is_file() else intro(info)
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def publish(section: str, info: dict[str, str], t_start: float, write: bool = True,
            start: str = MARK_START, end: str = MARK_END) -> None:
    """Warn if the code changed mid-run, add the total time, print, and write the section."""
    if source_state() != info["source"]:
        warning = ("**Warning: edgebird's sources changed while this benchmark ran; the numbers "
                   "mix two versions of the code. Run it again.**")
        print(warning, file=sys.stderr)
        section += "\n\n" + warning
    section += f"\n\nTotal benchmark time: {(time.perf_counter() - t_start) / 60:.1f} min."
    print()
    print(section)
    if write:
        write_docs(section, info, DOCS, start, end)
        print(f"\nwrote {DOCS}")


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="batch 1 and 8 only, fewer windows, one run of each embed case")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs of each whole-process measurement (default 3; 1 with --quick)")
    parser.add_argument("--windows", type=int, default=None,
                        help="windows each ceiling worker times (default 128; 32 with --quick)")
    parser.add_argument("--retries", type=int, default=2,
                        help="repeat a measurement disturbed by other processes up to this "
                             "many times (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for generated audio and stores (default {DEFAULT_OUT})")
    parser.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS}")
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    windows = args.windows if args.windows is not None else (32 if args.quick else 128)
    if runs < 1 or windows < 1 or args.retries < 0:
        parser.error("--runs and --windows must be >= 1, --retries >= 0")

    info = machine_info()
    print(f"machine: {info}", flush=True)
    from edgebird.backbones.birdnet.files import birdnet_files, embedding_model_file

    embedding_model_file(birdnet_files().model)  # the rewritten model exists before timing

    t_start = time.perf_counter()
    print("generating audio ...", flush=True)
    audio = args.out / "audio"
    shorts = make_short_files(audio / "short")
    long10 = make_long_file(audio / "long" / "long_10min_44k.wav", 10)
    long30 = make_long_file(audio / "long" / "long_30min_44k.wav", 30)

    print("ceiling (model alone) ...", flush=True)
    ceiling = []
    for p, t, b in ceiling_grid(args.quick):
        for attempt in range(args.retries + 1):
            r = measure_ceiling(p, t, b, windows)
            print(f"  P={p} T={t} B={b}: {r.windows_per_s:.1f} windows/s, {r.x_realtime:.0f}x "
                  f"realtime, {r.ms_per_segment:.1f} ms/segment (load+warm-up "
                  f"{r.load_warmup:.2f} s, other CPU {100 * r.other_load:.0f}%)", flush=True)
            if r.other_load <= OTHER_LOAD_LIMIT:
                break
            if attempt < args.retries:
                print("    disturbed by other processes; measuring again", flush=True)
        ceiling.append(r)

    cases = []
    for name, inputs in (("20 x 60 s", shorts), ("1 x 30 min", [long30]),
                         ("1 x 10 min", [long10])):
        n, seconds = count_windows(inputs)
        cases.append(EmbedCase(name, inputs, n, seconds))
    stores = args.out / "stores"
    print(f"edgebird embed, whole process, {runs} run(s) each ...", flush=True)
    for case in cases:
        measure_case(case, stores, runs, args.retries)
    shutil.rmtree(stores, ignore_errors=True)

    section = render(info, ceiling, cases, runs, args.quick)
    publish(section, info, t_start, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
