"""``edgebird experiment`` on devbirds: how long the research commands take, side by side.

What is measured, and why: each case is a whole process (``python -m edgebird ...``), as a user
runs it, on ``../shared/data/devbirds`` (10 species x 10 recordings), one round after the
other, medians over ``--runs`` rounds (default 2). The reference row is ``edgebird embed`` of
the same files into a fresh store: the part of every experiment that touches audio.

* ``curve``, defaults (BirdNET + logistic regression, shots 1..100 capped by the data,
  10 repeats), **fresh store**: what a first run costs, embedding included. Target (issue 9):
  under 10 minutes on 2 cores.
* the same with the store warm (a rerun with other settings);
* ``curve --heads all`` (the Keras heads dominate), warm;
* ``report`` (every head on BirdNET, fusion and hand-crafted features, pseudo-labelling with
  three loss weightings; EXPERIMENTS.md), fresh store: every backbone embeds.

Peak memory is the largest resident set of the process tree (sampled). Results go between the
``bench_experiment`` markers of ``docs/BENCHMARKS.md``.

Run: ``python bench/bench_experiment.py`` (about 20 min on 2 cores) or ``--quick`` (one round,
no ``report``).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import bench_embed as be  # noqa: E402 - a sibling script, not a package

ROOT = BENCH.parent
DEVBIRDS = ROOT.parent / "shared" / "data" / "devbirds"
OUT = BENCH / "out" / "experiment"
MARK_START = "<!-- bench_experiment:start -->"
MARK_END = "<!-- bench_experiment:end -->"
TARGET_SECONDS = 600.0


@dataclass
class Case:
    name: str
    args: list[str]
    fresh_store: bool
    runs: list[be.ProcessRun] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def run(case: Case, data: Path) -> be.ProcessRun:
    store = OUT / ("store-fresh" if case.fresh_store else "store-warm")
    if case.fresh_store:
        shutil.rmtree(store, ignore_errors=True)
    out = OUT / "results" / case.name.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    command, options = case.args[:2 if case.args[0] == "experiment" else 1], case.args[2:] \
        if case.args[0] == "experiment" else case.args[1:]
    cmd = [sys.executable, "-m", "edgebird", *command, str(data), *options, "-q"]
    cmd += ["--store", str(store), "-o", str(out)] if command[0] == "experiment" else \
        ["-o", str(store)]
    return be.run_process(cmd)


def render(info: dict, cases: list[Case], runs: int) -> str:
    ref = cases[0].median("wall")
    lines = [
        "## `edgebird experiment` on devbirds (`bench/bench_experiment.py`)", "",
        f"{info['date']}; {info['cpu']}, {info['cores']} cores, {info['memory']}; Python "
        f"{info['python']}, numpy {info['numpy']}, ai-edge-litert {info['ai-edge-litert']}. "
        f"Whole processes on `../shared/data/devbirds` (100 recordings, 10 species), median of "
        f"{runs} round(s); ratios to `edgebird embed` of the same files in the same run.", "",
        "| case | wall | x embed | peak RSS (tree) | target |",
        "|---|--:|--:|--:|---|",
    ]
    for c in cases:
        wall = c.median("wall")
        target = ""
        if c.name.startswith("curve, defaults, fresh"):
            target = (f"< {TARGET_SECONDS / 60:.0f} min: "
                      f"{'met' if wall < TARGET_SECONDS else 'MISSED'}")
        lines.append(f"| {c.name} | {wall:.1f} s | {wall / ref:.1f} | "
                     f"{c.median('peak_tree_rss_mb'):.0f} MB | {target} |")
    lines += ["", "The fresh-store cases include embedding every window with each backbone "
              "they use; warm cases read the store. Keras fits (about 3 s each for the dense "
              "heads, 40 per head at 10 repeats x 4 shot counts) are most of `--heads all` "
              "and of `report`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-docs", action="store_true")
    p.add_argument("--data", type=Path, default=DEVBIRDS)
    args = p.parse_args(argv)
    if not (args.data / "labels.csv").is_file() and not any(args.data.glob("*/")):
        print(f"devbirds not found at {args.data}: nothing to measure", file=sys.stderr)
        return 1
    runs = args.runs or (1 if args.quick else 2)
    info = be.machine_info()
    t0 = time.perf_counter()
    cases = [
        Case("embed (reference), fresh store", ["embed", "--crop-mode", "smart"], True),
        Case("curve, defaults, fresh store", ["experiment", "curve"], True),
        Case("curve, defaults, warm store", ["experiment", "curve"], False),
        Case("curve --heads all, warm store", ["experiment", "curve", "--heads", "all"], False),
    ]
    if not args.quick:
        cases.append(Case("report, fresh store", ["experiment", "report"], True))
    run(Case("warm-up", ["experiment", "curve", "--shots", "1", "--repeats", "2"], False),
        args.data)  # fills the warm store
    for r in range(runs):
        print(f"round {r + 1}/{runs}", flush=True)
        for c in cases:
            c.runs.append(run(c, args.data))
            print(f"  {c.name:34s} {c.runs[-1].wall:7.1f} s "
                  f"{c.runs[-1].peak_tree_rss_mb:6.0f} MB", flush=True)
    be.publish(render(info, cases, runs), info, t0, write=not args.no_docs,
               start=MARK_START, end=MARK_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
