"""Benchmark ``edgebird train`` on devbirds, whole process: wall time, CPU and peak memory
per head, with the quality each run reports (issue 21: "``edgebird train`` on devbirds wall
time and peak memory").

What is measured: ``edgebird train DEVBIRDS -o OUT --head H --seed 0`` as a fresh process
for each head (``anchored``, the default; ``logreg``; ``dense``, the Keras head), the
embedding store warmed first by one untimed run so every timed run is a cache hit (the
embedding step has its own benchmark, ``bench_embed``); heads run round-robin ``--runs``
times and the median is reported. The process tree's memory is sampled
(``harness.run_process``). Each run's cross-validated macro F1 (at the exported thresholds,
and at 0.5), AUPRC, and the false positives on noise and on held-out species come from its
``metrics.json``: the same for every run of a head (the heads are deterministic for a seed;
the dense head up to TensorFlow's thread scheduling), so the first run's are shown.

Needs ``../shared/data/devbirds``; without it the script says so and exits.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

HEADS = ("anchored", "logreg", "dense")
DEVBIRDS = harness.ROOT.parent / "shared" / "data" / "devbirds"


def quality(metrics: Path) -> dict[str, float]:
    m = json.loads(metrics.read_text())
    macro = next(r for r in m["metrics"] if (r["model"], r["split"], r["class"])
                 == ("head", "mean", "MACRO"))
    held = m.get("held_out_species") or []
    return {"f1_thr": macro["f1@thr"], "f1_half": macro["f1@0.5"], "auprc": macro["auprc"],
            "noise_fp": (m.get("noise_false_positives") or {}).get("fp_rate@thr",
                                                                   float("nan")),
            "held_fp": (statistics.mean(r["fp_rate@thr"] for r in held) if held
                        else float("nan"))}


#: case -> the ``edgebird train`` options that make it (``bench_autotune`` has its own)
CASES = {h: ["--head", h] for h in HEADS}


def run_cases(cases: dict[str, list[str]], args, out: Path):
    """Each case as a fresh ``edgebird train`` process, round-robin ``args.runs`` times, after
    one untimed run that warms the embedding store: the runs and each case's quality."""
    store = out / "store"
    shutil.rmtree(out, ignore_errors=True)
    base = harness.edgebird_command() + ["train", str(DEVBIRDS), "--seed", "0", "--store",
                                         str(store)]
    harness.run_process(base + ["-o", str(out / "warm"), "--head", "logreg"],
                        sample_memory=False)
    runs: dict[str, list[harness.ProcessRun]] = {c: [] for c in cases}
    found: dict[str, dict[str, float]] = {}
    for r in range(args.runs):
        for i, (case, options) in enumerate(cases.items()):
            model = out / f"case{i}-{r}"
            print(f"run {r + 1}/{args.runs}: {case}", flush=True)
            runs[case].append(harness.run_process(base + ["-o", str(model), *options]))
            found.setdefault(case, quality(model / "metrics.json"))
    return runs, found


def median_wall(runs: dict) -> dict[str, float]:
    """Case -> the median wall time of its runs."""
    return {case: statistics.median(x.wall for x in rs) for case, rs in runs.items()}


def table(runs: dict, found: dict, default: str = "anchored") -> list[str]:
    rows = ["| case | wall (median) | CPU | peak RSS, tree | other CPU | CV macro F1 @ "
            "thresholds | @ 0.5 | AUPRC | noise FP | held-out species FP |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for case, rs in runs.items():
        q = found[case]
        rows.append(
            f"| {case}{' (default)' if case == default else ''} | "
            f"{statistics.median(x.wall for x in rs):.1f} s | "
            f"{statistics.median(x.cpu_seconds for x in rs):.1f} s | "
            f"{statistics.median(x.peak_tree_rss_mb for x in rs):.0f} MB | "
            f"{100 * max(x.other_load for x in rs):.0f}% | {q['f1_thr']:.3f} | "
            f"{q['f1_half']:.3f} | {q['auprc']:.3f} | {100 * q['noise_fp']:.1f}% | "
            f"{100 * q['held_fp']:.1f}% |")
    return rows


def main() -> None:
    p = harness.parser(__doc__, runs="timed runs per head (default 3)", out=harness.OUT)
    args = harness.resolve(p, p.parse_args())
    if not DEVBIRDS.is_dir():
        sys.exit(f"devbirds not found at {DEVBIRDS}: nothing to measure")
    info, t_start = harness.begin()
    runs, found = run_cases(CASES, args, args.out / "train_devbirds")
    rows = table(runs, found)
    wall = median_wall(runs)
    fastest = min(HEADS, key=wall.get)
    ratio = wall["dense"] / wall["anchored"]
    section = "\n".join([
        "## `edgebird train` on devbirds, whole process (`bench/bench_train_devbirds.py`)",
        "",
        harness.generated_by(info, "bench_train_devbirds.py"),
        "",
        f"`edgebird train devbirds --head H --seed 0` (100 clips, 10 species; default auto "
        f"folds = 5, 64 synthetic noise windows, 10 held-out species), embedding store warm "
        f"(cache hit), each head {args.runs} time(s) round-robin, median. Peak RSS: the "
        f"process tree's, sampled. Quality: the run's own `metrics.json` (false positives at "
        f"the exported thresholds). MB = 10^6 bytes.",
        "",
        *rows,
        "",
        f"- The dense (Keras) head takes {ratio:.1f}x the default head's wall time; "
        f"fastest: {fastest}.",
        *harness.caution([x.other_load for rs in runs.values() for x in rs],
                         "these runs", "their times are high"),
    ])
    harness.publish(section, info, t_start, "bench_train_devbirds", write=not args.no_docs)


if __name__ == "__main__":
    main()
