"""``edgebird analyze --dask`` against the local engine, side by side in one run.

What is measured, and why:

(1) THROUGHPUT on the other benchmarks' 20 x 60 s WAV set (``harness.short_files``):
    ``edgebird analyze`` as a whole process with the local engine (default: one worker process
    per core) and with ``--dask local:2`` and ``--dask local:1``, a fresh output folder each
    run, round-robin over ``--runs`` rounds (default 3), medians reported. Wall time includes
    everything: for Dask, starting the scheduler and the worker processes, loading the model
    in each worker (the worker plugin), and shutting the cluster down. Target (issue):
    ``--dask local:2`` >= 0.9x the local engine.

(2) WHERE DASK'S TIME GOES, to extrapolate honestly to more workers:
    * the fixed cost of a Dask run: the same command on ONE 3-s file (start-up, cluster start,
      plugin, one tiny task, shutdown), against the local engine's fixed cost;
    * the per-file overhead: 40 files of 3 s each (so compute is small) with ``--dask local:2``;
      (wall - fixed) / files - compute per file = scheduling and result round trip per file;
    * from (1), 1 -> 2 workers: the speed-up on 2 cores.
    The model: wall(W workers, F files) = fixed + F x (compute per file / W + overhead), valid
    while the scheduler and the shared file system keep up (not measurable on one machine).

Results go between the ``bench_cluster`` markers of ``docs/BENCHMARKS.md``.

Run: ``python bench/bench_cluster.py`` (about 4 min on 2 cores) or ``--quick`` (one round).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import harness as h
import numpy as np

NAME = "bench_cluster"
OUT = h.OUT / "cluster"
TARGET_RATIO = 0.9  # --dask local:2 against the local engine (issue)


@dataclass
class Case(h.Throughput):
    name: str
    extra: list[str]
    inputs: Path
    audio_seconds: float
    windows: int
    files: int
    runs: list[h.ProcessRun] = field(default_factory=list)


def run(case: Case, out: Path) -> h.ProcessRun:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [*h.edgebird_command(), "analyze", str(case.inputs), "-o", str(out), "-q",
           "--no-skip-existing", *case.extra]
    return h.run_process(cmd)


def tiny_files(folder: Path, count: int) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    for i in range(count):
        p = folder / f"tiny_{i:03d}.wav"
        if not p.is_file():
            sf.write(p, (0.05 * rng.standard_normal(3 * 48000)).astype(np.float32), 48000,
                     subtype="PCM_16")
    return folder


def render(info: dict, cases: list[Case], runs: int) -> str:
    by = {c.name: c for c in cases}
    local, d2, d1 = by["local engine"], by["--dask local:2"], by["--dask local:1"]
    f_local, f_dask = by["local engine, one 3-s file"], by["--dask local:2, one 3-s file"]
    tiny = by["--dask local:2, 40 x 3 s"]
    tiny_local = by["local engine, 40 x 3 s"]
    ratio = d2.x_realtime / local.x_realtime
    per_file_compute = (d2.wall - f_dask.wall) / d2.files  # at 2 workers, incl. overhead
    # overhead per file: tiny files cost (wall - fixed) / F, minus what the same tiny files
    # cost the local engine past its own fixed cost (their compute)
    tiny_dask = (tiny.wall - f_dask.wall) / tiny.files
    tiny_loc = (tiny_local.wall - f_local.wall) / tiny_local.files
    overhead = max(0.0, tiny_dask - tiny_loc)
    lines = [
        "## `edgebird analyze --dask` vs the local engine (`bench/bench_cluster.py`)",
        "",
        h.generated_by(info, "bench_cluster.py",
                       extra={"dask/distributed": h.version_of("distributed")})
        + f" Whole processes, fresh output folders, median of {runs} round(s) run round-robin; "
        "the 20 x 60 s set is the other benchmarks' (44.1 and 48 kHz WAV, some stereo), "
        "default settings (Raven tables).",
        "",
        "| run | files | x realtime | wall s | ms / segment | peak RSS, tree MB | "
        "every run (wall s) |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    for c in cases:
        lines.append(f"| {c.name} | {c.files} | {c.x_realtime:.1f} | {c.wall:.2f} | "
                     f"{c.ms_per_segment:.1f} | {c.median('peak_tree_rss_mb'):.0f} | "
                     + h.fmt_list(r.wall for r in c.runs) + " |")
    lines += [
        "",
        f"- **`--dask local:2` / local engine: {ratio:.2f}x** in x realtime on 20 x 60 s "
        f"(target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else '**missed**'}).",
        f"- 1 -> 2 workers: {d2.x_realtime / d1.x_realtime:.2f}x faster (2 cores).",
        f"- Fixed cost of a run (one 3-s file): local engine {f_local.wall:.2f} s, "
        f"`--dask local:2` {f_dask.wall:.2f} s (scheduler and 2 worker processes started, "
        "model loaded in each by the plugin, cluster shut down).",
        f"- Per-file overhead of Dask (40 x 3-s files, past the fixed cost, minus the same "
        "files' cost in the local engine; it includes the padding of each one-window file "
        "to a full batch, which the local engine avoids by batching windows across files): "
        f"{1000 * overhead:.0f} ms per file; a 60-s file "
        f"costs {1000 * per_file_compute * 2:.0f} ms of one worker here.",
        "",
        "Extrapolation: wall(W workers, F files) ~ fixed + F x (t_file / W + overhead), with "
        f"t_file ~ {per_file_compute * 2:.2f} s per 60-s file on one core of this machine and "
        f"overhead ~ {1000 * overhead:.0f} ms (paid by the client and scheduler while the "
        "workers compute, so it only limits once F x overhead approaches the compute). "
        "For 10,000 one-minute files on 100 one-core workers that is about "
        f"{(f_dask.wall + 10_000 * (per_file_compute * 2 / 100 + overhead)) / 60:.0f} min, "
        "if the scheduler and the shared file system keep up, which one machine cannot show: "
        "measure a few hundred files on the real cluster first.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = h.parser(__doc__, quick="one round", runs="rounds (default 3; 1 with --quick)")
    args = h.resolve(p, p.parse_args(argv))
    runs = args.runs
    info, t0 = h.begin()
    shorts = h.short_files()
    n, seconds = h.count_windows(shorts)
    one = tiny_files(OUT / "tiny1", 1)  # alone in its folder: analyze is given the folder
    tiny = tiny_files(OUT / "tiny40", 40)
    short_dir = shorts[0].parent
    cases = [
        Case("local engine", [], short_dir, seconds, n, len(shorts)),
        Case("--dask local:2", ["--dask", "local:2"], short_dir, seconds, n, len(shorts)),
        Case("--dask local:1", ["--dask", "local:1"], short_dir, seconds, n, len(shorts)),
        Case("local engine, one 3-s file", [], one, 3.0, 1, 1),
        Case("--dask local:2, one 3-s file", ["--dask", "local:2"], one, 3.0, 1, 1),
        Case("local engine, 40 x 3 s", [], tiny, 120.0, 40, 40),
        Case("--dask local:2, 40 x 3 s", ["--dask", "local:2"], tiny, 120.0, 40, 40),
    ]
    for r in range(runs):
        print(f"round {r + 1}/{runs}", flush=True)
        for c in cases:
            c.runs.append(run(c, OUT / "results"))
            print(f"  {c.name:32s} {c.runs[-1].wall:6.2f} s", flush=True)
    shutil.rmtree(OUT / "results", ignore_errors=True)
    h.publish(render(info, cases, runs), info, t0, NAME, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
