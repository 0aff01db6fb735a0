"""What every benchmark in ``bench/`` shares: the machine, clean timings, memory, audio, reports.

A benchmark script (``bench_*.py``) keeps only its own cases; everything that makes a number
comparable between scripts lives here, so that "x realtime", "peak tree RSS" or "other CPU"
mean the same in every section of docs/BENCHMARKS.md:

* the machine and the code measured (``machine_info``, ``source_state``, ``cores``);
* whether the machine was quiet (``OtherLoad``; ``steady`` repeats a disturbed measurement);
* whole processes (``run_process``: wall, CPU seconds of the tree, optionally the tree's peak
  RSS / PSS sampled every 50 ms by ``TreeSampler``) and a process's own peak (``peak_rss_bytes``);
* the CEILING, BirdNET alone in P spawned processes x T threads (``measure_ceiling``);
* the shared audio set (``short_files``: 20 x 60 s at 44.1 / 48 kHz, some stereo;
  ``long_file``: one long mono WAV) and its window count (``count_windows``);
* medians over runs and speed figures of a case (``Medians``, ``Throughput``);
* the command line every script has (``parser``, ``resolve``) and the report
  (``generated_by``, ``fmt_list``, ``verdict``, ``caution``, ``publish`` into the script's
  section of BENCHMARKS.md).

Scripts import it as a sibling module (``bench/`` is not a package): run as
``python bench/bench_x.py``, the script's folder is first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.metadata
import multiprocessing as mp
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"  # generated audio, models, stores (git-ignored)
DOCS = ROOT / "docs" / "BENCHMARKS.md"
#: Real recordings (10 species x 10), as the tests find them.
DEVBIRDS = Path(os.environ.get("EDGEBIRD_DEVBIRDS", ROOT.parent / "shared" / "data" / "devbirds"))
#: The code whose state a result records (what the benchmarks run).
SOURCES = ("edgebird", "gui", "export")

WINDOW_SECONDS = 3.0
SEGMENT_SAMPLES = 144_000
MB = 1e6  # MB in every report is 10^6 bytes
SAMPLE_SECONDS = 0.05  # memory sampling period

#: A measurement during which other processes (or the hypervisor's steal time) used more than
#: this share of the machine's CPU is repeated, up to ``--retries`` times, then flagged.
OTHER_LOAD_LIMIT = 0.05

#: Targets of embed and analyze (issue): >= 0.9 x the ceiling; <= 600 MB on the 30-min file.
TARGET_RATIO = 0.9
TARGET_RSS_MB = 600.0

T = TypeVar("T")


# -- the machine and the code ------------------------------------------------------------------
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
    """The code being measured: git commit, whether its sources have uncommitted changes, and
    a hash of their Python files (so a result can be matched to the exact code)."""
    h = hashlib.sha256()
    for folder in SOURCES:
        for f in sorted((ROOT / folder).rglob("*.py")):
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                *SOURCES], capture_output=True, text=True, check=True).stdout
        commit += f" + uncommitted changes in {'/, '.join(SOURCES)}/" if dirty.strip() else ""
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


def prepare_birdnet() -> None:
    """Make sure BirdNET's rewritten model exists before anything is timed (the first use
    writes it once; no benchmark should pay for that)."""
    from edgebird.backbones.birdnet.model import birdnet_files, embedding_model_file

    embedding_model_file(birdnet_files().model)


def begin(birdnet: bool = True) -> tuple[dict[str, str], float]:
    """A benchmark's start: the machine (printed), BirdNET ready (``prepare_birdnet``), and
    the start time ``publish`` reports the total from."""
    info = machine_info()
    print(f"machine: {info}", flush=True)
    if birdnet:
        prepare_birdnet()
    return info, time.perf_counter()


# -- a quiet machine ---------------------------------------------------------------------------
def children_cpu() -> float:
    """User + sys seconds of every waited-for descendant so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


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
        return own.ru_utime + own.ru_stime + children_cpu()

    def __enter__(self) -> OtherLoad:
        self._t0, self._busy0, self._own0 = time.monotonic(), self._busy(), self._own()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self._t0
        other = (self._busy() - self._busy0) - (self._own() - self._own0)
        self.share = max(0.0, other) / max(wall * cores(), 1e-9)


def steady(measure: Callable[[], T], retries: int, label: str | None = None,
           pause: float = 0.0, load: Callable[[T], float] = lambda r: r.other_load) -> T:
    """``measure()`` again (up to ``retries`` times, after ``pause`` seconds, so a passing load
    can pass) while other processes disturbed it (``load(result)`` above
    ``OTHER_LOAD_LIMIT``); the last attempt is kept either way (its *other CPU* is reported).
    With a ``label``, each repetition is announced."""
    for attempt in range(retries + 1):
        result = measure()
        share = load(result)
        if share <= OTHER_LOAD_LIMIT or attempt == retries:
            return result
        if label is not None:
            print(f"  {label}: other processes used {100 * share:.0f}% of the CPU; measuring "
                  "again" + (f" in {pause:.0f} s" if pause else ""), flush=True)
        time.sleep(pause)
    raise AssertionError("unreachable")


# -- memory ------------------------------------------------------------------------------------
def vm_hwm(pid: int | str = "self") -> int:
    """A process's peak RSS so far (the kernel's high-water mark VmHWM), bytes; 0 if the kernel
    does not report it. Raises OSError once the process is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """This process's peak RSS. VmHWM rather than ru_maxrss: on Linux ru_maxrss survives exec,
    so a process started by a larger one (a subprocess, a spawned worker) would report the
    larger one's peak."""
    try:
        peak = vm_hwm()
    except OSError:
        peak = 0
    return peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


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


# -- whole processes ---------------------------------------------------------------------------
@dataclass
class ProcessRun:
    """One command run to completion. The memory figures are NaN (and ``max_processes`` 0)
    when it ran without the sampler."""

    wall: float
    peak_tree_rss_mb: float
    peak_single_rss_mb: float
    peak_tree_pss_mb: float
    max_processes: int
    stdout: str
    other_load: float
    cpu_seconds: float = 0.0  # user + sys of the whole (waited-for) process tree


def edgebird_command() -> list[str]:
    """The ``edgebird`` console script of this environment (``python -m edgebird`` without)."""
    script = Path(sys.executable).with_name("edgebird")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edgebird"]


def run_process(cmd: list[str], sample_memory: bool = True, env: dict[str, str] | None = None,
                merge_stderr: bool = True) -> ProcessRun:
    """Run ``cmd`` to completion and time it; raise if it fails. With ``sample_memory``, a
    thread of this process (on the same cores: it slows the run by a few percent) samples the
    process tree's memory. stderr goes into ``stdout`` unless ``merge_stderr`` is off (then
    it is only shown on failure)."""
    cpu0 = children_cpu()
    with OtherLoad() as load:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env,
                                stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE)
        sampler = TreeSampler(proc.pid) if sample_memory else None
        if sampler is not None:
            sampler.start()
        out, err = proc.communicate()
        wall = time.perf_counter() - t0
        if sampler is not None:
            sampler.stop()
    cpu = children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{err or out}")
    if sampler is None:
        nan = float("nan")
        return ProcessRun(wall, nan, nan, nan, 0, out, load.share, cpu)
    return ProcessRun(wall, sampler.peak_tree / MB, sampler.peak_single / MB,
                      sampler.peak_pss / MB, sampler.max_processes, out, load.share, cpu)


# -- the ceiling: BirdNET alone ----------------------------------------------------------------
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

    def describe(self) -> str:
        """One progress line."""
        return (f"P={self.processes} T={self.threads} B={self.batch}: "
                f"{self.windows_per_s:.1f} windows/s, {self.x_realtime:.0f}x realtime, "
                f"{self.ms_per_segment:.1f} ms/segment (load+warm-up {self.load_warmup:.2f} s, "
                f"other CPU {100 * self.other_load:.0f}%)")


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
    """BirdNET alone (``BirdNET.embed``, the whole graph, XNNPACK) on random float32 windows in
    ``processes`` spawned workers x ``threads`` interpreter threads, batch ``batch``: each
    times ``windows_per_worker`` windows (whole batches) after one warm-up invoke, all starting
    together. Nothing but the model runs: no pipeline on this machine can be faster."""
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


def short_files(out: Path = OUT) -> list[Path]:
    """The benchmarks' 20 x 60 s set (in ``out/audio/short``; alone in that folder)."""
    return make_short_files(out / "audio" / "short")


def long_file(minutes: int, out: Path = OUT) -> Path:
    """The benchmarks' ``minutes``-long 44.1 kHz mono file (in ``out/audio/long``)."""
    return make_long_file(out / "audio" / "long" / f"long_{minutes}min_44k.wav", minutes)


def count_windows(paths: list[Path]) -> tuple[int, float]:
    """Windows ``embed`` / ``analyze`` compute with default settings, and the audio seconds."""
    from edgebird.audio import AudioSettings, planned_starts, probe

    settings = AudioSettings()
    windows, seconds = 0, 0.0
    for p in paths:
        info = probe(p)
        windows += len(planned_starts(info, settings))
        seconds += info.duration
    return windows, seconds


# -- cases -------------------------------------------------------------------------------------
class Medians:
    """A case holding lists of runs: the median of one figure over one of them."""

    def median(self, attr: str, runs: str = "runs") -> float:
        """Median of ``attr`` over the runs in the list attribute ``runs``."""
        return statistics.median(getattr(r, attr) for r in getattr(self, runs))


class Throughput(Medians):
    """Speed figures of a benchmark case from its median wall time (a case defines
    ``runs``, ``audio_seconds`` and ``windows``)."""

    audio_seconds: float
    windows: int

    @property
    def wall(self) -> float:
        return self.median("wall")

    @property
    def x_realtime(self) -> float:
        return self.audio_seconds / self.wall

    @property
    def ms_per_segment(self) -> float:
        return 1000 * self.wall / self.windows


# -- the command line --------------------------------------------------------------------------
def parser(doc: str, *, quick: str | None = None, runs: str | None = None,
           retries: bool = False, ceiling: bool = False, out: Path | None = None,
           out_help: str = "generated inputs and outputs") -> argparse.ArgumentParser:
    """The options benchmarks share (each only where given): ``--quick`` (its help),
    ``--runs`` (its help), ``--retries``, ``--windows`` of the ceiling, ``--out`` (default
    ``out``); ``--no-docs`` always. ``resolve`` fills in the defaults after parsing."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if quick is not None:
        p.add_argument("--quick", action="store_true", help=quick)
    if runs is not None:
        p.add_argument("--runs", type=int, default=None, help=runs)
    if ceiling:
        p.add_argument("--windows", type=int, default=None,
                       help="windows each ceiling worker times (default 128; 32 with --quick)")
        p.set_defaults(ceiling_windows=(128, 32))  # (full, --quick), for resolve
    if retries:
        p.add_argument("--retries", type=int, default=2,
                       help="repeat a measurement disturbed by other processes up to this "
                            "many times (default 2)")
    if out is not None:
        p.add_argument("--out", type=Path, default=out,
                       help=f"folder for {out_help} (default {out})")
    p.add_argument("--no-docs", action="store_true", help=f"do not write {DOCS}")
    return p


def resolve(p: argparse.ArgumentParser, args: argparse.Namespace,
            full_runs: int = 3) -> argparse.Namespace:
    """Defaults that depend on ``--quick`` (``--runs`` 1 instead of ``full_runs``, ceiling
    ``--windows`` 32 instead of 128), then checks them."""
    quick = getattr(args, "quick", False)
    if hasattr(args, "runs") and args.runs is None:
        args.runs = 1 if quick else full_runs
    if hasattr(args, "ceiling_windows") and args.windows is None:
        args.windows = args.ceiling_windows[quick]
    if getattr(args, "runs", 1) < 1 or (hasattr(args, "ceiling_windows") and args.windows < 1):
        p.error("--runs and --windows must be >= 1")
    if getattr(args, "retries", 0) < 0:
        p.error("--retries must be >= 0")
    return args


# -- the report --------------------------------------------------------------------------------
def fmt_list(values: Iterable[float], digits: int = 2) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def generated_by(info: dict[str, str], script: str, quick: bool = False,
                 extra: dict[str, str] | None = None) -> str:
    """The sentence that opens a section: the command, the date, the machine and every
    version that matters (``extra``: more of them, after numpy)."""
    versions = {"Python": info["python"], "numpy": info["numpy"], **(extra or {}),
                "ai-edge-litert": info["ai-edge-litert"]}
    return (f"Generated by `python bench/{script}{' --quick' if quick else ''}` on "
            f"{info['date']}: {info['cpu']}, {info['cores']} cores, {info['memory']}, "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + f", edgebird {info['edgebird']} ({info['source']}).")


def caution(loads: Iterable[float], during: str = "some measurements",
            effect: str = "those numbers are low") -> list[str]:
    """A target list's warning line when other processes disturbed a measurement."""
    worst = max(loads, default=0.0)
    if worst <= OTHER_LOAD_LIMIT:
        return []
    return [f"- **Caution: other processes used up to {100 * worst:.0f}% of the CPU during "
            f"{during} (see *other CPU*); {effect}.**"]


def markers(name: str) -> tuple[str, str]:
    """The comments around a script's section of BENCHMARKS.md."""
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


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


def write_docs(section: str, info: dict[str, str], name: str, path: Path = DOCS) -> None:
    """Replace one script's section of BENCHMARKS.md (between its markers), or append it;
    the rest of the file stays as it is."""
    start, end = markers(name)
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


def publish(section: str, info: dict[str, str], t_start: float, name: str,
            write: bool = True) -> None:
    """Warn if the code changed mid-run, add the total time, print, and write the section
    of script ``name`` (e.g. "bench_embed")."""
    if source_state() != info["source"]:
        warning = ("**Warning: edgebird's sources changed while this benchmark ran; the numbers "
                   "mix two versions of the code. Run it again.**")
        print(warning, file=sys.stderr)
        section += "\n\n" + warning
    section += f"\n\nTotal benchmark time: {(time.perf_counter() - t_start) / 60:.1f} min."
    print()
    print(section)
    if write:
        write_docs(section, info, name)
        print(f"\nwrote {DOCS}")
