"""``edgebird experiment`` on devbirds: how long the research commands take, side by side.

What is measured, and why: each case is a whole process (``python -m edgebird ...``), as a user
runs it, on ``../shared/data/devbirds`` (or ``$EDGEBIRD_DEVBIRDS``; 10 species x 10
recordings), one round after the other, medians over ``--runs`` rounds (default 2). The
reference row is ``edgebird embed`` of the same files into a fresh store: the part of every
experiment that touches audio.

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

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import harness as h

NAME = "bench_experiment"
OUT = h.OUT / "experiment"
TARGET_SECONDS = 600.0


@dataclass
class Case(h.Medians):
    name: str
    args: list[str]
    fresh_store: bool
    runs: list[h.ProcessRun] = field(default_factory=list)


def run(case: Case, data: Path) -> h.ProcessRun:
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
    return h.run_process(cmd)


def render(info: dict, cases: list[Case], runs: int) -> str:
    ref = cases[0].median("wall")
    lines = [
        "## `edgebird experiment` on devbirds (`bench/bench_experiment.py`)", "",
        h.generated_by(info, "bench_experiment.py") + " "
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
    p = h.parser(__doc__, quick="one round, no report",
                 runs="rounds (default 2; 1 with --quick)")
    p.add_argument("--data", type=Path, default=h.DEVBIRDS,
                   help=f"the devbirds recordings (default {h.DEVBIRDS})")
    args = h.resolve(p, p.parse_args(argv), full_runs=2)
    if not (args.data / "labels.csv").is_file() and not any(args.data.glob("*/")):
        print(f"devbirds not found at {args.data}: nothing to measure", file=sys.stderr)
        return 1
    runs = args.runs
    info, t0 = h.begin(birdnet=False)
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
    h.publish(render(info, cases, runs), info, t0, NAME, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
