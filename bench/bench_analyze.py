"""Benchmark ``edgebird analyze`` against the speed of the BirdNET model alone.

What is measured, and why:

(1) The CEILING, as every benchmark measures it (``harness.measure_ceiling``): BirdNET alone on
    random windows in P spawned processes x T interpreter threads, batch B, nothing else
    running. 2 x 1, batch 4 is the best configuration bench_embed found on 2 cores; 2 x 1
    batch 8 and 1 x 2 batch 4 are measured for context. No analysis can be faster than the
    best of these, so every ``analyze`` number is given as a ratio to it.

(2) ``edgebird analyze`` as a WHOLE PROCESS: ``python -m edgebird analyze INPUT -o OUT -q
    --no-skip-existing`` in a subprocess, a fresh output folder each run, default settings
    otherwise (Raven tables, min-conf 0.25, one worker per core, 1 thread, batch 4), on 20 x
    60 s WAV files (44.1 and 48 kHz, some stereo) and on one 30-minute WAV, with three models:
    BirdNET's own 6,522 classes; ``-c HEAD.tflite``, a head-only custom classifier (BirdNET's
    embedding, then a dense layer in a second interpreter); ``-c STANDALONE.tflite``, BirdNET
    with the same dense layer appended after its embedding tensor (audio -> custom logits, one
    interpreter). The custom models are written here with edgebird's own TFLite writer
    (``tflite_graph.dense_head_model`` / ``append_dense_head``, no TensorFlow) from random
    weights, one dense layer 1024 -> 10 classes: the weights' values do not change the
    arithmetic, so they time exactly like trained ones (only the number of detections, i.e.
    rows written, depends on them). Wall time includes everything a user waits for:
    interpreter start-up, imports, checking the classifier, spawning workers, model loading,
    decoding, resampling, inference, scoring and writing the tables. Reported: x realtime, ms
    per segment (a segment is one 3-s window), the ratio to the ceiling, CPU seconds (user +
    sys of the whole tree, from ``getrusage(RUSAGE_CHILDREN)``), and peak RSS of the process
    tree and of the largest single process. Memory comes from a SEPARATE run of the same
    command through ``harness.run_process`` (its sampler thread reads the tree's RSS every
    50 ms and PSS every 0.5 s): that thread runs in this process on the same cores and slows
    the measured run by a few percent, so the timed runs go without it. The timed command is
    then run again with skip-existing on (the default) on its finished output, where every
    file is skipped: the cost of resuming a finished batch.

    The ceiling and all cases are measured round-robin (round 1 of everything, then round
    2, ...), so a slow drift of the machine's speed affects every number alike; each number is
    the median of ``--runs`` rounds (default 3).

(3) WHERE THE TIME GOES, when a target is missed (or with ``--breakdown always``): the fixed
    start-up cost (``analyze`` on one 3-s file, with the default pool and with
    ``--workers 1``), and one profiled run per case: the CLI runs in-process under
    ``cProfile`` (``instrumented_cli`` below; ``edgebird.pipeline.engine._worker`` is wrapped, not
    changed, so each worker writes its own profile and the parent's profile covers the
    parent only), with the parent's and the workers' CPU seconds from ``getrusage``. This
    shows whether the parent (unpickling results, sigmoid over every class of every window,
    selection, writing tables) or the workers (decoding, resampling, inference) limit the
    throughput, and turns the gap to the ceiling into seconds per cause. For memory: BirdNET
    on the 30-minute file with ``--batch-size`` 1, 2 and 3 (one run each), against the
    default 4.

Targets (from the issue): ``analyze`` >= 0.9 x the ceiling in x realtime; peak RSS of the
process tree <= 600 MB on the 30-minute file. MB here is 10^6 bytes.

Generated audio, models and outputs go to ``bench/out/`` (git-ignored; the audio is the
benchmarks' shared set, ``harness.short_files`` / ``long_file``, reused when present). Results
are printed as markdown and written between the ``bench_analyze`` markers of ``docs/BENCHMARKS.md``.

Run: ``python bench/bench_analyze.py`` (full, about 9 minutes on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness as h
import numpy as np

NAME = "bench_analyze"

#: (processes, threads, batch). The first is bench_embed's best on 2 cores (and analyze's
#: default engine); the others are context.
CEILING_CONFIGS = ((2, 1, 4), (2, 1, 8), (1, 2, 4))
N_CLASSES = 10
#: The breakdown runs print one line starting with this, holding their rusage as JSON.
RUSAGE_TAG = "BENCH_ANALYZE_RUSAGE "
PROFILE_ENV = "BENCH_ANALYZE_PROFILE_DIR"


#: Seconds to wait before repeating a disturbed measurement, so a passing load can pass.
RETRY_PAUSE = 10.0


def steady(measure, label: str, retries: int):
    return h.steady(measure, retries, label, RETRY_PAUSE)


# -- custom classifiers ------------------------------------------------------------------------
def make_classifiers(folder: Path) -> dict[str, Path]:
    """A head-only and a standalone (replace mode) model from the same random dense layer
    1024 -> 10, each with its ``_Labels.txt`` (no thresholds file: min-conf 0.25 applies)."""
    from edgebird.backbones.birdnet import graph as tflite_graph
    from edgebird.backbones.birdnet.model import EMBEDDING_TENSOR, birdnet_files
    from edgebird.training.model_export import write_model

    rng = np.random.default_rng(0)
    # Logits ~ N(-2, 1) on BirdNET embeddings: a few detections per window, as a real head.
    weights = (0.05 * rng.standard_normal((1024, N_CLASSES))).astype(np.float32)
    bias = np.full(N_CLASSES, -2.0, dtype=np.float32)
    layers = [(weights, bias, False)]  # tflite_graph.DenseLayer: (W [in, out], b [out], relu)
    labels = [f"Species {c}_{c.upper()}" for c in "abcdefghij"[:N_CLASSES]]
    folder.mkdir(parents=True, exist_ok=True)
    head = write_model(folder / "BenchClassifier_head.tflite",
                       tflite_graph.dense_head_model(layers, "bench_analyze head"), labels, None)
    base = birdnet_files().model.read_bytes()
    standalone = write_model(
        folder / "BenchClassifier.tflite",
        tflite_graph.append_dense_head(base, EMBEDDING_TENSOR, layers, "replace"), labels, None)
    return {"head": head, "standalone": standalone}


# -- whole-process runs ------------------------------------------------------------------------
@dataclass
class AnalyzeRun:
    """One CLI process: wall and CPU time, what it reported, and (sampled runs) its memory."""

    wall: float
    cpu_seconds: float  # user + sys of the CLI and all its workers
    other_load: float
    stdout: str
    analyzed: int
    skipped: int
    failed: int
    windows: int
    detections: int
    memory: h.ProcessRun | None = None  # peak RSS / PSS, from harness.TreeSampler


SUMMARY_RE = re.compile(r"files: (\d+) \((\d+) analyzed, (\d+) skipped as already done, "
                        r"(\d+) failed\)")


def analyze_args(inputs: list[Path], out: Path, classifier: Path | None,
                 skip_existing: bool = False, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["analyze", *map(str, inputs), "-o", str(out), "-q", *extra]
    if classifier is not None:
        args += ["-c", str(classifier)]
    if not skip_existing:
        args.append("--no-skip-existing")
    return args


def run_analyze(args: list[str], prefix: list[str] | None = None,
                sample_memory: bool = False) -> AnalyzeRun:
    """One CLI process (``python -m edgebird`` unless ``prefix`` says otherwise) and its
    tree's CPU time; with ``sample_memory``, its memory too (``harness.run_process``: the
    sampler thread, in this process on the same cores, costs the run some speed)."""
    cmd = [*(prefix or [sys.executable, "-m", "edgebird"]), *args]
    run = h.run_process(cmd, sample_memory)
    memory = run if sample_memory else None
    wall, cpu, out, load = run.wall, run.cpu_seconds, run.stdout, run.other_load
    m = SUMMARY_RE.search(out)
    w = re.search(r"in (\d+) windows", out)
    d = re.search(r"detections: (\d+) of", out)
    if not (m and w and d):
        raise RuntimeError(f"unexpected analyze output from {' '.join(cmd)}:\n{out}")
    return AnalyzeRun(wall, cpu, load, out, int(m.group(2)), int(m.group(3)), int(m.group(4)),
                      int(w.group(1)), int(d.group(1)), memory)


@dataclass
class Case(h.Throughput):
    model: str  # "BirdNET", "head", "standalone"
    classifier: Path | None
    input_name: str
    inputs: list[Path]
    windows: int
    audio_seconds: float
    runs: list[AnalyzeRun] = field(default_factory=list)  # timed, no memory sampling
    reruns: list[AnalyzeRun] = field(default_factory=list)  # skip-existing on, all skipped
    sampled: list[AnalyzeRun] = field(default_factory=list)  # memory sampled

    @property
    def key(self) -> str:
        return f"{self.model}-{self.input_name}".replace(" ", "")

    @property
    def label(self) -> str:
        return {"BirdNET": "BirdNET (6,522 classes)", "head": "`-c` head-only (10 classes)",
                "standalone": "`-c` standalone (10 classes)"}[self.model]

    def memory(self, attr: str) -> float:
        """Median of a memory figure (``peak_tree_rss_mb``, ...) over the sampled runs."""
        return statistics.median(getattr(r.memory, attr) for r in self.sampled)



def measure_case(case: Case, outs: Path, index: int, retries: int) -> None:
    """A timed run into a fresh folder, the skip-existing rerun on it, then a run with the
    memory sampler into another fresh folder."""
    out = outs / f"{case.key}-{index}"

    def fresh(sample_memory: bool = False) -> AnalyzeRun:
        shutil.rmtree(out, ignore_errors=True)
        return run_analyze(analyze_args(case.inputs, out, case.classifier), None, sample_memory)

    first = steady(fresh, f"{case.key} run {index + 1}", retries)
    if (first.analyzed, first.failed, first.windows) != (len(case.inputs), 0, case.windows):
        raise RuntimeError(f"{case.key}: expected {len(case.inputs)} files analyzed in "
                           f"{case.windows} windows:\n{first.stdout}")
    again = run_analyze(analyze_args(case.inputs, out, case.classifier, skip_existing=True))
    if (again.analyzed, again.skipped) != (0, len(case.inputs)):
        raise RuntimeError(f"{case.key}: the rerun did not skip every file:\n{again.stdout}")
    sampled = fresh(sample_memory=True)
    case.runs.append(first)
    case.reruns.append(again)
    case.sampled.append(sampled)
    shutil.rmtree(out, ignore_errors=True)
    print(f"  {case.model:10s} {case.input_name:10s} run {index + 1}: {first.wall:.2f} s "
          f"({case.audio_seconds / first.wall:.0f}x realtime), CPU {first.cpu_seconds:.1f} s, "
          f"rerun {again.wall:.2f} s; sampled {sampled.wall:.2f} s, tree RSS "
          f"{sampled.memory.peak_tree_rss_mb:.0f} MB; other CPU {100 * first.other_load:.0f}%",
          flush=True)


@dataclass
class Ceiling:
    processes: int
    threads: int
    batch: int
    runs: list[h.CeilingResult] = field(default_factory=list)

    @property
    def median(self) -> h.CeilingResult:
        """The run with the median speed (the lower middle one for an even count)."""
        ordered = sorted(self.runs, key=lambda r: r.windows_per_s)
        return ordered[(len(ordered) - 1) // 2]


# -- where the time goes -----------------------------------------------------------------------
def instrumented_cli() -> int:
    """Entry point of the breakdown runs (``python -c``, arguments as for ``edgebird``): the
    CLI in this process; with $BENCH_ANALYZE_PROFILE_DIR set, under cProfile, the parent into
    ``parent.prof`` and each worker (forked) into ``worker-PID.prof``. Prints the parent's
    own CPU seconds and its (joined) workers' as a tagged JSON line."""
    import cProfile

    from edgebird import cli
    from edgebird.pipeline import engine

    folder = os.environ.get(PROFILE_ENV)
    parent = None
    if folder:
        original = engine._worker

        def profiled_worker(*args):
            prof = cProfile.Profile()
            prof.enable()
            try:
                original(*args)
            finally:
                prof.disable()
                prof.dump_stats(os.path.join(folder, f"worker-{os.getpid()}.prof"))

        engine._worker = profiled_worker  # looked up when WorkerPool starts a process
        parent = cProfile.Profile()
        os.register_at_fork(after_in_child=parent.disable)  # a worker profiles itself only
        parent.enable()
    t0 = time.perf_counter()
    code = cli.main(sys.argv[1:])
    wall = time.perf_counter() - t0
    if parent is not None:
        parent.disable()
        parent.dump_stats(os.path.join(folder, "parent.prof"))
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(RUSAGE_TAG + json.dumps({
        "main_wall": wall, "parent_cpu": own.ru_utime + own.ru_stime,
        "workers_cpu": kids.ru_utime + kids.ru_stime,
        "parent_rss_mb": h.peak_rss_bytes() / h.MB,
        # Workers are forked, not exec'd: their ru_maxrss is their own (KiB on Linux).
        "worker_rss_mb": kids.ru_maxrss * 1024 / h.MB}), flush=True)
    return code


def _instrumented_prefix() -> list[str]:
    code = (f"import sys; sys.path.insert(0, {str(h.BENCH)!r}); import bench_analyze; "
            "sys.exit(bench_analyze.instrumented_cli())")
    return [sys.executable, "-c", code]


def profile_time(stats, file_end: str, func: str,
                 caller: tuple[str, str] | None = None) -> tuple[float, int]:
    """Cumulative seconds and calls of ``func`` (defined in a file ending ``file_end``; ""
    matches any), over all callers or only those from ``caller`` = (file end, function)."""
    seconds, calls = 0.0, 0
    for (fname, _, name), (_, nc, _, ct, callers) in stats.stats.items():
        if name != func or not fname.endswith(file_end):
            continue
        if caller is None:
            seconds, calls = seconds + ct, calls + nc
            continue
        for (cfile, _, cname), (c_nc, _, _, c_ct) in callers.items():
            if cname == caller[1] and cfile.endswith(caller[0]):
                seconds, calls = seconds + c_ct, calls + c_nc
    return seconds, calls


@dataclass
class Breakdown:
    """One profiled run of a case: rusage and where the parent's and workers' time went."""

    wall: float  # outer wall of the profiled process
    main_wall: float  # inside the CLI's main()
    parent_cpu: float
    workers_cpu: float
    workers: int
    parent: dict[str, float]
    worker: dict[str, float]  # summed over the workers
    parent_rss_mb: float = 0.0
    worker_rss_mb: float = 0.0  # the largest worker's peak
    other_load: float = 0.0

    @property
    def handling(self) -> float:
        """The parent's work per result: unpickling, scoring and selecting, writing."""
        return self.parent["unpickle"] + self.parent["detections"] + self.parent["write"]

    def gap_parts(self, windows: int, window_core_s: float) -> dict[str, float]:
        """wall - ideal, split exactly (see render_breakdown); per worker = sums / n."""
        n = max(self.workers, 1)
        w = self.worker
        known = w["load"] + w["decode"] + w["invoke"] + w["waiting"]
        return {"outside": self.wall - w["life"] / n, "load": w["load"] / n,
                "decode": w["decode"] / n,
                "slower_invoke": (w["invoke"] - windows * window_core_s) / n,
                "idle": w["waiting"] / n, "other": (w["life"] - known) / n}


def measure_breakdown(case: Case, outs: Path, retries: int) -> Breakdown:
    import pstats

    folder = outs / f"profile-{case.key}"
    out = outs / f"breakdown-{case.key}"

    def once() -> AnalyzeRun:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        folder.mkdir(parents=True)
        return run_analyze(analyze_args(case.inputs, out, case.classifier),
                           prefix=_instrumented_prefix())

    os.environ[PROFILE_ENV] = str(folder)
    try:
        run = steady(once, f"profiled {case.key}", retries)
    finally:
        del os.environ[PROFILE_ENV]
    usage = json.loads(next(line for line in run.stdout.splitlines()
                            if line.startswith(RUSAGE_TAG))[len(RUSAGE_TAG):])
    p = pstats.Stats(str(folder / "parent.prof"))
    loads = profile_time(p, "~", "<built-in method _pickle.loads>", ("queues.py", "get"))[0]
    got = profile_time(p, "queues.py", "get", ("engine.py", "run"))[0]
    parent = {
        "analyze_files": profile_time(p, "analyze.py", "analyze_files")[0],
        "load_model": profile_time(p, "models.py", "load_model")[0],
        "start_workers": profile_time(p, "batch.py", "start_workers")[0],
        "plan": profile_time(p, "analyze.py", "plan_file")[0],
        "waiting": got - loads,
        "unpickle": loads,
        "sigmoid": profile_time(p, "scores.py", "flat_sigmoid", ("analyze.py", "detections"))[0],
        "select": profile_time(p, "scores.py", "select", ("analyze.py", "detections"))[0],
        "detections": profile_time(p, "analyze.py", "detections")[0],
        "write": profile_time(p, "analyze.py", "write_results")[0],  # render + write the tables
        "count": profile_time(p, "analyze.py", "_count")[0],
    }
    worker: dict[str, float] = {}
    files = sorted(folder.glob("worker-*.prof"))
    for f in files:
        s = pstats.Stats(str(f))
        for name, value in {
            "life": profile_time(s, "engine.py", "_worker")[0],
            "load": profile_time(s, "", "load", ("engine.py", "_worker"))[0],
            "waiting": profile_time(s, "queues.py", "get", ("engine.py", "_worker"))[0],
            "decode": profile_time(s, "audio.py", "iter_windows")[0],
            "invoke": profile_time(s, "interpreter.py", "invoke")[0],
        }.items():
            worker[name] = worker.get(name, 0.0) + value
    shutil.rmtree(out, ignore_errors=True)
    return Breakdown(run.wall, usage["main_wall"], usage["parent_cpu"], usage["workers_cpu"],
                     len(files), parent, worker, usage["parent_rss_mb"], usage["worker_rss_mb"],
                     run.other_load)


def measure_startup(one: list[Path], classifiers: dict[str, Path], outs: Path, runs: int,
                    retries: int) -> dict[str, list[AnalyzeRun]]:
    """``analyze`` on one 3-s file: a single window, so the wall time is the fixed cost."""
    variants = {"BirdNET": (None, ()), "BirdNET, --workers 1": (None, ("--workers", "1")),
                "head": (classifiers["head"], ()), "standalone": (classifiers["standalone"], ())}
    result: dict[str, list[AnalyzeRun]] = {name: [] for name in variants}
    out = outs / "startup"
    for i in range(runs):
        for name, (classifier, extra) in variants.items():
            def fresh(classifier=classifier, extra=extra) -> AnalyzeRun:
                shutil.rmtree(out, ignore_errors=True)
                return run_analyze(analyze_args(one, out, classifier, extra=extra))

            result[name].append(steady(fresh, f"start-up {name} run {i + 1}", retries))
    shutil.rmtree(out, ignore_errors=True)
    for name, rs in result.items():
        print(f"  start-up, {name}: {statistics.median(r.wall for r in rs):.2f} s", flush=True)
    return result


def measure_batches(long_file: Path, outs: Path,
                    retries: int) -> dict[int, tuple[AnalyzeRun, AnalyzeRun]]:
    """BirdNET on the 30-minute file with smaller batches: how memory trades against speed
    (a timed run and a memory-sampled run per batch size)."""
    result = {}
    out = outs / "batches"
    for batch in (1, 2, 3):
        def fresh(batch=batch, sample_memory=False) -> AnalyzeRun:
            shutil.rmtree(out, ignore_errors=True)
            return run_analyze(analyze_args([long_file], out, None,
                                            extra=("--batch-size", str(batch))),
                               None, sample_memory)

        timed = steady(fresh, f"batch {batch}", retries)
        result[batch] = timed, fresh(sample_memory=True)
        print(f"  BirdNET, 30 min, batch {batch}: {timed.wall:.2f} s, tree RSS "
              f"{result[batch][1].memory.peak_tree_rss_mb:.0f} MB", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    return result


# -- report ------------------------------------------------------------------------------------
def render(info: dict[str, str], ceilings: list[Ceiling], cases: list[Case], runs: int,
           quick: bool, breakdown: dict | None) -> str:
    best = max((c.median for c in ceilings), key=lambda r: r.windows_per_s)
    per_worker = ceilings[0].median.windows // ceilings[0].processes
    lines = [
        "## `edgebird analyze` vs the model alone",
        "",
        h.generated_by(info, "bench_analyze.py", quick),
        "",
        "To rerun (from the repository root): `python bench/bench_analyze.py` (full, about 9 "
        "min on 2 cores) or `--quick` (one run each, one ceiling configuration). The ceiling "
        f"and every case are measured round-robin, {runs} round(s); each number is the median.",
        "",
        "### Ceiling: BirdNET alone (random windows, `BirdNET.embed`, XNNPACK)",
        "",
        "As in every benchmark (`harness.measure_ceiling`): P worker processes x T interpreter "
        f"threads, batch B; each worker times {per_worker} windows after one warm-up invoke, "
        "all starting together.",
        "",
        "| P | T | B | windows | wall s | windows/s | x realtime | ms/segment | windows/s, "
        "every run | load + warm-up s | worker peak RSS MB | other CPU % |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for c in ceilings:
        r = c.median
        mark = " **best**" if r is best else ""
        lines.append(
            f"| {r.processes} | {r.threads} | {r.batch}{mark} | {r.windows} | {r.wall:.2f} | "
            f"{r.windows_per_s:.1f} | {r.x_realtime:.0f} | {r.ms_per_segment:.1f} | "
            f"{h.fmt_list([x.windows_per_s for x in c.runs], 1)} | {r.load_warmup:.2f} | "
            f"{r.worker_rss_mb:.0f} | {100 * max(x.other_load for x in c.runs):.0f} |")
    lines += [
        "",
        f"**Ceiling: {best.x_realtime:.0f}x realtime, {best.ms_per_segment:.1f} ms/segment** "
        f"(P={best.processes}, T={best.threads}, B={best.batch}).",
        "",
        "### `edgebird analyze`, whole process",
        "",
        "`python -m edgebird analyze INPUT -o OUT -q --no-skip-existing [-c MODEL]` in a "
        "subprocess, a fresh output folder each run, default settings otherwise (Raven "
        "tables, min-conf 0.25, one worker per core, 1 thread, batch 4). *BirdNET*: its own "
        "classes. *Head-only*: a 1024 -> 10 dense layer run on BirdNET's embedding in a second "
        "interpreter (`HeadModel`). *Standalone*: BirdNET with the same layer appended after "
        "its embedding tensor, one interpreter from audio to the 10 logits "
        "(`StandaloneModel`). Both custom models are written by"
        " `edgebird.backbones.birdnet.graph` from "
        "**random weights**: weights do not change the amount of arithmetic, so they time like "
        "trained ones (only the number of detections, i.e. rows written, depends on them). "
        "Times and CPU come from runs without memory sampling; the memory columns from "
        "another run of the same command, sampled every 50 ms: *peak tree RSS* sums the CLI "
        "and its workers, *tree PSS* counts "
        "a page shared by k processes as 1/k, *single* is the largest one process. *CPU s*: "
        "user + sys of the CLI and all its workers. *Rerun*: the same command with "
        "skip-existing on (the default) on the finished output, every file skipped. *Other "
        f"CPU*: the share of the machine other processes used; runs above "
        f"{100 * h.OTHER_LOAD_LIMIT:.0f}% are repeated.",
        "",
        "| model | input | windows | detections | wall s | x realtime | ms/segment "
        "| vs ceiling | peak tree RSS MB | peak tree PSS MB | peak single RSS MB | CPU s "
        "| rerun s | other CPU % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in cases:
        lines.append(
            f"| {c.label} | {c.input_name} | {c.windows} | {c.median('detections'):.0f} | "
            f"{c.wall:.2f} | {c.x_realtime:.0f} | {c.ms_per_segment:.1f} | "
            f"{c.x_realtime / best.x_realtime:.2f} | {c.memory('peak_tree_rss_mb'):.0f} | "
            f"{c.memory('peak_tree_pss_mb'):.0f} | {c.memory('peak_single_rss_mb'):.0f} | "
            f"{c.median('cpu_seconds'):.1f} | {c.median('wall', 'reruns'):.2f} | "
            f"{100 * max(r.other_load for r in c.runs):.0f} |")
    lines += ["", "Every run (wall s; rerun s; sampled runs: wall s, peak tree RSS MB):", ""]
    for c in cases:
        lines.append(f"- {c.model}, {c.input_name}: {h.fmt_list([r.wall for r in c.runs])}; "
                     f"{h.fmt_list([r.wall for r in c.reruns])}; "
                     f"{h.fmt_list([r.wall for r in c.sampled])}, "
                     f"{h.fmt_list([r.memory.peak_tree_rss_mb for r in c.sampled], 0)}")
    slow = statistics.median(c.median("wall", "sampled") / c.wall - 1 for c in cases)
    lines += ["", f"The memory sampler (a thread of this benchmark, on the same cores) slows a run "
              f"by {100 * slow:.1f}% (median over the cases of sampled / timed wall), so times and "
              "memory come from separate runs. (`bench_embed.py` times its sampled runs: its "
              "speeds carry this overhead.)"]
    lines += ["", "### Targets", ""]
    lines += h.caution([r.other_load for c in ceilings for r in c.runs]
                       + [r.other_load for c in cases for r in c.runs])
    for model in dict.fromkeys(c.model for c in cases):
        mine = [c for c in cases if c.model == model]
        ratios = ", ".join(f"{c.input_name} {c.x_realtime / best.x_realtime:.2f}x" for c in mine)
        ok = all(c.x_realtime / best.x_realtime >= h.TARGET_RATIO for c in mine)
        lines.append(f"- {mine[0].label} >= {h.TARGET_RATIO}x the ceiling: "
                     f"{h.verdict(ok)} ({ratios}).")
    for c in cases:
        if c.input_name == "1 x 30 min":
            rss = c.memory("peak_tree_rss_mb")
            lines.append(
                f"- {c.label}: peak RSS <= {h.TARGET_RSS_MB:.0f} MB on the 30-minute file: "
                f"{h.verdict(rss <= h.TARGET_RSS_MB)} ({rss:.0f} MB tree "
                f"RSS, {c.memory('peak_tree_pss_mb'):.0f} MB PSS, largest single process "
                f"{c.memory('peak_single_rss_mb'):.0f} MB).")
    if breakdown:
        lines += render_breakdown(breakdown, cases, best)
    return "\n".join(lines)


def render_breakdown(bd: dict, cases: list[Case], best: h.CeilingResult) -> list[str]:
    startup: dict[str, list[AnalyzeRun]] = bd["startup"]
    profiles: dict[str, Breakdown] = bd["profiles"]
    # Core-seconds one window costs the model at the ceiling (P x T cores busy for wall).
    window_core_s = best.processes * best.threads * best.wall / best.windows
    lines = [
        "",
        "### Where the time goes",
        "",
        "**Fixed start-up cost**: `analyze` on one 3-s file (one window, which runs in the "
        "parent: a single work unit never goes to the pool), fresh output, median of "
        f"{len(next(iter(startup.values())))} run(s). It covers the interpreter, imports, "
        "checking the classifier, starting the worker pool, loading the model, one (padded) "
        "batch and writing the tables: a cost per invocation, not per window.",
        "",
        "| model | wall s | CPU s |",
        "|---|--:|--:|",
    ]
    for name, rs in startup.items():
        lines.append(f"| {name} | {statistics.median(r.wall for r in rs):.2f} | "
                     f"{statistics.median(r.cpu_seconds for r in rs):.2f} |")
    lines += [
        "",
        "**Parent vs workers**: one more run of each case with the CLI in-process under "
        "`cProfile` (the parent and each worker profiled"
        " separately; `edgebird.pipeline.engine._worker` "
        "is wrapped, not changed) and `getrusage` for the parent's own CPU time and peak RSS "
        "and its workers'. *Parent handling* is all the parent does per result: unpickling "
        "the logits, `Plan.detections` (`flat_sigmoid` over every class of every window, then "
        "`select`) and writing the tables (`write_results`). Worker columns are summed over "
        "the workers: *invoke* is time inside the interpreter's `invoke` (for the head-only "
        "model both interpreters'), *decode* is `iter_windows` (reading, down-mixing, "
        "resampling to 48 kHz), *idle* is waiting for tasks. *Invoke core-ms/window* = invoke "
        f"/ windows; at the ceiling a window costs {1000 * window_core_s:.1f} ms of one core.",
        "",
        "| case | wall s (unprofiled) | parent CPU s | `load_model` s | parent handling s "
        "(sigmoid; select; write) | workers CPU s | decode s | invoke s | invoke "
        "core-ms/window | idle s | parent peak RSS MB | largest worker peak RSS MB "
        "| other CPU % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in cases:
        b = profiles[c.key]
        pa, wo = b.parent, b.worker
        lines.append(
            f"| {c.model}, {c.input_name} | {b.wall:.2f} ({c.wall:.2f}) | {b.parent_cpu:.2f} | "
            f"{pa['load_model']:.2f} | {b.handling:.2f} ({pa['sigmoid']:.2f}; "
            f"{pa['select']:.2f}; {pa['write']:.2f}) | {b.workers_cpu:.2f} | "
            f"{wo['decode']:.2f} | {wo['invoke']:.2f} | {1000 * wo['invoke'] / c.windows:.1f} | "
            f"{wo['waiting']:.2f} | {b.parent_rss_mb:.0f} | {b.worker_rss_mb:.0f} | "
            f"{100 * b.other_load:.0f} |")
    lines += [
        "",
        "**The gap to the ceiling, per cause** (profiled run; seconds of wall time). With n "
        "workers on n cores, wall = (time outside the workers' lives) + (mean worker life), "
        "and a worker's life = model load + decode + invoke + idle + other, so "
        "wall - windows / ceiling speed splits exactly into: *outside workers* (the parent "
        "alone: interpreter start-up, imports, `load_model`, planning, forking; at the end "
        "joining the workers, counting detections, exit), then per worker (sums / n): *model "
        "load*, *decode*, *slower invoke* (invoke time above the ceiling's per-window cost: "
        "contention with the other processes and threads), *idle* (waiting for tasks, mostly "
        "the last unit's tail) and *other* (batching, queues, partial batches). *While workers "
        "run*: the ceiling's speed over the mean worker life, i.e. the ratio without the "
        "parent-only start-up and shut-down.",
        "",
        "| case | profiled wall s | at ceiling s | gap s | outside workers | model load | decode "
        "| slower invoke | idle | other | x ceiling | while workers run |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in cases:
        b = profiles[c.key]
        ideal = c.windows / best.windows_per_s
        parts = b.gap_parts(c.windows, window_core_s)
        lines.append(
            f"| {c.model}, {c.input_name} | {b.wall:.2f} | {ideal:.2f} | {b.wall - ideal:.2f} | "
            + " | ".join(f"{parts[k]:.2f}" for k in GAP_PARTS)
            + f" | {ideal / b.wall:.2f} | {ideal / (b.wall - parts['outside']):.2f} |")
    batches: dict[int, tuple[AnalyzeRun, AnalyzeRun]] = bd["batches"]
    long_birdnet = next((c for c in cases if c.model == "BirdNET"
                         and c.input_name == "1 x 30 min"), None)
    if long_birdnet is not None:
        lines += [
            "",
            "**Memory against batch size** (BirdNET, 30-minute file, `--batch-size B`, one "
            "timed and one sampled run each; batch 4, the default, is the median from the main "
            "table):",
            "",
            "| B | wall s | x realtime | vs ceiling | peak tree RSS MB | peak tree PSS MB "
            "| peak single RSS MB |",
            "|--:|--:|--:|--:|--:|--:|--:|",
        ]
        rows = [(b, t.wall, m.memory.peak_tree_rss_mb, m.memory.peak_tree_pss_mb,
                 m.memory.peak_single_rss_mb) for b, (t, m) in sorted(batches.items())]
        c = long_birdnet
        rows.append((4, c.wall, c.memory("peak_tree_rss_mb"), c.memory("peak_tree_pss_mb"),
                     c.memory("peak_single_rss_mb")))
        for b, wall, tree, pss, single in rows:
            x = c.audio_seconds / wall
            lines.append(f"| {b} | {wall:.2f} | {x:.0f} | {x / best.x_realtime:.2f} | "
                         f"{tree:.0f} | {pss:.0f} | {single:.0f} |")
    lines += ["", "Findings (computed from the tables above):", ""]
    lines += findings(cases, profiles, startup, batches, window_core_s, best)
    return lines


GAP_PARTS = ("outside", "load", "decode", "slower_invoke", "idle", "other")


def findings(cases: list[Case], profiles: dict[str, Breakdown],
             startup: dict[str, list[AnalyzeRun]],
             batches: dict[int, tuple[AnalyzeRun, AnalyzeRun]],
             window_core_s: float, best: h.CeilingResult) -> list[str]:
    out = []
    per_window = {c.key: profiles[c.key].handling / c.windows for c in cases}
    worst_parent = max(cases, key=lambda c: per_window[c.key])
    pb = profiles[worst_parent.key]
    share = per_window[worst_parent.key] / window_core_s
    verdict = ("**The parent is not what limits throughput.**" if share < 0.05 else
               "**The parent's result handling is a real cost.**")
    out.append(
        f"- {verdict} Its result handling costs at most {1000 * per_window[worst_parent.key]:.2f} "
        f"ms per window ({worst_parent.model}, {worst_parent.input_name}: sigmoid "
        f"{1000 * pb.parent['sigmoid'] / worst_parent.windows:.2f}, select "
        f"{1000 * pb.parent['select'] / worst_parent.windows:.2f}, unpickling "
        f"{1000 * pb.parent['unpickle'] / worst_parent.windows:.2f}, writing "
        f"{1000 * pb.parent['write'] / worst_parent.windows:.2f} ms), {100 * share:.1f}% of "
        f"the {1000 * window_core_s:.1f} ms of core time the model needs per window; the "
        f"parent's whole CPU time is {min(profiles[c.key].parent_cpu for c in cases):.2f}-"
        f"{max(profiles[c.key].parent_cpu for c in cases):.2f} s per run, mostly start-up.")
    names = {"outside": "outside the workers (start-up and shut-down)", "load": "model load",
             "decode": "decoding and resampling", "slower_invoke": "a slower invoke",
             "idle": "idle workers", "other": "other worker overhead"}
    for c in cases:
        b = profiles[c.key]
        parts = b.gap_parts(c.windows, window_core_s)
        ordered = sorted(parts.items(), key=lambda kv: -kv[1])
        ideal = c.windows / best.windows_per_s
        if c.model != "BirdNET":
            continue
        out.append(
            f"- BirdNET, {c.input_name}: {b.wall - ideal:.2f} s behind the ceiling "
            f"({ideal / b.wall:.2f}x in this run): "
            + ", ".join(f"{names[k]} {v:.2f} s" for k, v in ordered) + ".")
    inv = [1000 * profiles[c.key].worker["invoke"] / c.windows for c in cases]
    lo, hi = (round(100 * (x / (1000 * window_core_s) - 1)) + 0 for x in (min(inv), max(inv)))
    speed = ("the workers run the model at nearly its best speed" if hi < 5 else
             "in the worst case the model runs noticeably slower than alone (contention with "
             "the other worker's decoding, the parent and the queues' feeder threads; "
             "profiling adds a little)")
    out.append(
        f"- Inside `analyze` the interpreter needs {min(inv):.1f}-{max(inv):.1f} core-ms per "
        f"window vs {1000 * window_core_s:.1f} at the ceiling ({lo:+d}% to {hi:+d}%): "
        f"{speed}. Decoding the audio in the same processes and the fixed start-up are costs "
        "the ceiling does not pay.")
    med = {k: statistics.median(r.wall for r in v) for k, v in startup.items()}
    if {"BirdNET", "BirdNET, --workers 1", "head", "standalone"} <= med.keys():
        out.append(
            f"- Fixed cost per invocation (3-s file): {med['BirdNET']:.2f} s with BirdNET "
            f"({med['BirdNET, --workers 1']:.2f} s with `--workers 1`), {med['head']:.2f} s "
            f"head-only, {med['standalone']:.2f} s standalone: "
            f"{100 * med['BirdNET'] / next(c.wall for c in cases if c.model == 'BirdNET'):.0f}"
            "% of the 20 x 60 s run. It does not shrink with the input, so the ratio to the "
            "ceiling rises with the length of a batch.")
    rss = {c.model: (c, profiles[c.key]) for c in cases if c.input_name == "1 x 30 min"}
    if "BirdNET" in rss and "standalone" in rss:
        (c, b), s_ = rss["BirdNET"], rss["standalone"][1]
        tree = c.memory("peak_tree_rss_mb")
        fits = [bs for bs, (_, m) in sorted(batches.items())
                if m.memory.peak_tree_rss_mb <= h.TARGET_RSS_MB]
        batch_note = ""
        if tree > h.TARGET_RSS_MB and fits:
            t, m = batches[fits[-1]]
            batch_note = (f" With `--batch-size {fits[-1]}` the tree peaks at "
                          f"{m.memory.peak_tree_rss_mb:.0f} MB, at {c.audio_seconds / t.wall:.0f}x "
                          f"realtime ({c.audio_seconds / t.wall / best.x_realtime:.2f}x the "
                          "ceiling; one run).")
        out.append(
            f"- Memory (BirdNET, 30-minute file; tree RSS {tree:.0f} MB): the parent peaks at "
            f"{b.parent_rss_mb:.0f} MB, each worker at up to {b.worker_rss_mb:.0f} MB; the "
            "tree's RSS sum counts the pages the processes share (imports inherited by fork, "
            "the mapped model file) once in each, PSS "
            f"({c.memory('peak_tree_pss_mb'):.0f} MB) splits them. A standalone worker peaks "
            f"at {s_.worker_rss_mb:.0f} MB ({b.worker_rss_mb - s_.worker_rss_mb:.0f} MB less): "
            "a graph whose outputs do not need BirdNET's 6,522-class layer does not hold it "
            "(1024 x 6522 float32 weights, mapped and packed by XNNPACK)." + batch_note)
    out += ["", "Possible fixes (none applied; edgebird/ is unchanged):", ""]
    prep = max(profiles[c.key].parent["start_workers"] for c in cases)
    out.append(
        f"- Start-up: `BirdNET.prepare` -> `embedding_model_file` hashes the 52 MB BirdNET "
        f"file (`sha256_of`) on every invocation only to find its cached rewrite: up to "
        f"{prep:.2f} s of `start_workers` in the parent, before any worker exists. Keying "
        "the cache on (path, size, mtime) would drop it.")
    if {"BirdNET", "BirdNET, --workers 1"} <= startup.keys():
        pool, alone = startup["BirdNET"], startup["BirdNET, --workers 1"]
        cpu = (statistics.median(r.cpu_seconds for r in pool)
               - statistics.median(r.cpu_seconds for r in alone))
        out.append(
            "- Tiny jobs: `analyze_files` starts the pool before planning, so a job of one work "
            "unit (a file of up to 64 windows) forks workers that load the model and are then "
            "terminated unused while the parent runs the unit itself: "
            f"{med['BirdNET'] - med['BirdNET, --workers 1']:.2f} s and {cpu:.2f} CPU s per "
            "invocation (start-up table). Planning first, or handing the unit to the pool, "
            "would avoid it.")
    if "BirdNET" in rss and "standalone" in rss:
        out.append(
            "- Memory of head-only analysis (`HeadModel`) and of `edgebird embed`: they read "
            "only the embedding, yet run the rewrite with both outputs. A rewrite whose only "
            "output is the embedding tensor drops the 6,522-class layer, about "
            f"{b.worker_rss_mb - s_.worker_rss_mb:.0f} MB per worker (see the standalone "
            "worker above).")
        out.append(
            "- Memory of BirdNET-class analysis: a smaller default batch (table above), "
            "or workers that send detections instead of `[windows, 6522]` logits (and no "
            "embeddings, which `analyze` discards) to keep fewer large arrays in flight.")
    if share >= 0.05:
        out.append(
            "- Parent: threshold the logits directly (the sigmoid is monotonic: score >= c "
            "iff logit + shift >= log(c / (1 - c))) and compute the sigmoid only for the hits.")
    return out


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="one run of everything, the best ceiling configuration "
                      "only, fewer ceiling windows",
                      runs="rounds of every measurement (default 3; 1 with --quick)",
                      ceiling=True, retries=True, out=h.OUT,
                      out_help="generated audio, models and outputs")
    parser.add_argument("--breakdown", choices=["auto", "always", "never"], default="auto",
                        help="the 'where the time goes' runs: when a target is missed (auto, "
                             "the default), always or never")
    args = h.resolve(parser, parser.parse_args(argv))
    runs, windows = args.runs, args.windows

    info, t_start = h.begin()
    print("generating audio and models ...", flush=True)
    shorts = h.short_files(args.out)
    long30 = h.long_file(30, args.out)
    one = h.make_short_files(args.out / "audio" / "one_3s", count=1, seconds=3.0)
    work = args.out / "analyze"
    classifiers = make_classifiers(work / "models")

    cases = []
    for model, classifier in (("BirdNET", None), ("head", classifiers["head"]),
                              ("standalone", classifiers["standalone"])):
        for name, inputs in (("20 x 60 s", shorts), ("1 x 30 min", [long30])):
            n, seconds = h.count_windows(inputs)
            cases.append(Case(model, classifier, name, inputs, n, seconds))
    ceilings = [Ceiling(*cfg) for cfg in (CEILING_CONFIGS[:1] if args.quick else CEILING_CONFIGS)]
    outs = work / "outputs"
    for i in range(runs):
        print(f"round {i + 1}/{runs}: ceiling ...", flush=True)
        for c in ceilings:
            r = steady(lambda c=c: h.measure_ceiling(c.processes, c.threads, c.batch, windows),
                       f"ceiling P={c.processes} T={c.threads} B={c.batch}", args.retries)
            c.runs.append(r)
            print(f"  {r.describe()}", flush=True)
        print(f"round {i + 1}/{runs}: edgebird analyze ...", flush=True)
        for case in cases:
            measure_case(case, outs, i, args.retries)

    best = max((c.median for c in ceilings), key=lambda r: r.windows_per_s)
    missed = any(c.x_realtime / best.x_realtime < h.TARGET_RATIO for c in cases) or any(
        c.memory("peak_tree_rss_mb") > h.TARGET_RSS_MB for c in cases
        if c.input_name == "1 x 30 min")
    breakdown = None
    if args.breakdown == "always" or (args.breakdown == "auto" and missed):
        print("where the time goes: start-up on a 3-s file ...", flush=True)
        startup = measure_startup(one, classifiers, outs, runs, args.retries)
        print("where the time goes: one profiled run per case ...", flush=True)
        profiles = {}
        for case in cases:
            profiles[case.key] = b = measure_breakdown(case, outs, args.retries)
            print(f"  {case.key}: {b.wall:.2f} s, parent CPU {b.parent_cpu:.2f} s, workers CPU "
                  f"{b.workers_cpu:.2f} s, invoke {b.worker['invoke']:.2f} s, decode "
                  f"{b.worker['decode']:.2f} s", flush=True)
        print("where the memory goes: smaller batches (BirdNET, 30 min) ...", flush=True)
        batches = measure_batches(long30, outs, args.retries)
        breakdown = {"startup": startup, "profiles": profiles, "batches": batches}
    shutil.rmtree(outs, ignore_errors=True)

    section = render(info, ceilings, cases, runs, args.quick, breakdown)
    h.publish(section, info, t_start, NAME, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
