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

import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import harness as h

NAME = "bench_embed"
#: The configuration ``edgebird embed`` uses by default on a 2-core machine.
EMBED_DEFAULT = (2, 1, 8)


# -- (a) ceiling: the model alone ------------------------------------------------------------
def ceiling_grid(quick: bool) -> list[tuple[int, int, int]]:
    batches = (1, 8) if quick else (1, 4, 8, 16, 32)
    grid = []
    for p in (1, 2):
        for t in (1, 2):
            if p * t > h.cores():
                continue
            grid += [(p, t, b) for b in batches]
    return grid


# -- (b), (c) whole process --------------------------------------------------------------------
def run_embed(inputs: list[Path], store: Path) -> h.ProcessRun:
    return h.run_process([*h.edgebird_command(), "embed", *map(str, inputs), "-o", str(store),
                          "-q"])


@dataclass
class EmbedCase(h.Throughput):
    name: str
    inputs: list[Path]
    windows: int
    audio_seconds: float
    runs: list[h.ProcessRun] = field(default_factory=list)
    cache_runs: list[h.ProcessRun] = field(default_factory=list)


def measure_case(case: EmbedCase, stores: Path, runs: int, retries: int) -> None:
    for i in range(runs):
        store = stores / f"{case.name}-{i}"

        def fresh(store: Path = store) -> h.ProcessRun:
            shutil.rmtree(store, ignore_errors=True)
            return run_embed(case.inputs, store)

        first = h.steady(fresh, retries, f"{case.name} run {i + 1}")
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
def render(info: dict[str, str], ceiling: list[h.CeilingResult], cases: list[EmbedCase],
           runs: int, quick: bool) -> str:
    best = max(ceiling, key=lambda r: r.windows_per_s)
    default = next((r for r in ceiling if (r.processes, r.threads, r.batch) == EMBED_DEFAULT),
                   None)
    lines = [
        "## `edgebird embed` vs the model alone",
        "",
        h.generated_by(info, "bench_embed.py", quick),
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
        f"during a run; runs above {100 * h.OTHER_LOAD_LIMIT:.0f}% are repeated.",
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
            f"{c.median('wall', 'cache_runs'):.2f} | "
            f"{100 * max(r.other_load for r in c.runs):.0f} |")
    lines += ["", "Every run (wall s; peak tree RSS MB; cache-hit wall s):", ""]
    for c in cases:
        lines.append(
            f"- {c.name}: {h.fmt_list([r.wall for r in c.runs])}; "
            f"{h.fmt_list([r.peak_tree_rss_mb for r in c.runs], 0)}; "
            f"{h.fmt_list([r.wall for r in c.cache_runs])}")
    lines += ["", "### Targets", ""]
    lines += h.caution([r.other_load for r in ceiling]
                       + [r.other_load for c in cases for r in c.runs])
    ok = h.verdict(all(c.x_realtime / best.x_realtime >= h.TARGET_RATIO for c in cases))
    worst = min(cases, key=lambda c: c.x_realtime)
    lines.append(
        f"- `embed` >= {h.TARGET_RATIO}x the ceiling: {ok} (lowest: {worst.name}, "
        f"{worst.x_realtime / best.x_realtime:.2f}x).")
    by_name = {c.name: c for c in cases}
    long30, long10 = by_name.get("1 x 30 min"), by_name.get("1 x 10 min")
    if long30:
        rss = long30.median("peak_tree_rss_mb")
        lines.append(
            f"- Peak RSS <= {h.TARGET_RSS_MB:.0f} MB on the 30-minute file (process tree): "
            f"{h.verdict(rss <= h.TARGET_RSS_MB)} ({rss:.0f} MB summed RSS, "
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
                f"({h.WINDOW_SECONDS / marginal:.0f}x realtime, "
                f"{h.WINDOW_SECONDS / marginal / best.x_realtime:.2f}x the ceiling).")
    return "\n".join(lines)



# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="batch 1 and 8 only, fewer windows, one run of each embed "
                      "case", runs="runs of each whole-process measurement (default 3; 1 with "
                      "--quick)", ceiling=True, retries=True, out=h.OUT,
                      out_help="generated audio and stores")
    args = h.resolve(parser, parser.parse_args(argv))
    runs = args.runs

    info, t_start = h.begin()
    print("generating audio ...", flush=True)
    shorts = h.short_files(args.out)
    long10 = h.long_file(10, args.out)
    long30 = h.long_file(30, args.out)

    print("ceiling (model alone) ...", flush=True)
    ceiling = []
    for p, t, b in ceiling_grid(args.quick):
        r = h.steady(lambda p=p, t=t, b=b: h.measure_ceiling(p, t, b, args.windows),
                     args.retries, f"P={p} T={t} B={b}")
        print(f"  {r.describe()}", flush=True)
        ceiling.append(r)

    cases = []
    for name, inputs in (("20 x 60 s", shorts), ("1 x 30 min", [long30]),
                         ("1 x 10 min", [long10])):
        n, seconds = h.count_windows(inputs)
        cases.append(EmbedCase(name, inputs, n, seconds))
    stores = args.out / "stores"
    print(f"edgebird embed, whole process, {runs} run(s) each ...", flush=True)
    for case in cases:
        measure_case(case, stores, runs, args.retries)
    shutil.rmtree(stores, ignore_errors=True)

    section = render(info, ceiling, cases, runs, args.quick)
    h.publish(section, info, t_start, NAME, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
