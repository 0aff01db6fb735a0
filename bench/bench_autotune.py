"""Benchmark ``--autotune`` on devbirds (issue 21.9): what a search of TRIALS trials costs in
wall time and memory, and what it changes in the reported quality, against the default head
with its default settings, side by side in one run.

What is measured: ``edgebird train DEVBIRDS --seed 0`` (the anchored head, defaults) and the
same with ``--autotune TRIALS``, each a fresh process, round-robin ``--runs`` times, median
(``bench_train_devbirds.run_cases``: store warmed first, so both are cache hits). Quality from
each run's ``metrics.json``. The tuned run's cross-validated figures lean optimistic (the
search saw the same recordings; its folds are drawn with another seed): read the held-out
species false positives beside them, which the search never scored.

Needs ``../shared/data/devbirds``; without it the script says so and exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from bench_train_devbirds import DEVBIRDS, median_wall, run_cases, table  # noqa: E402


def main() -> None:
    p = harness.parser(__doc__, runs="timed runs per case (default 3)", out=harness.OUT)
    p.add_argument("--trials", type=int, default=20, help="--autotune trials (default 20)")
    args = harness.resolve(p, p.parse_args())
    if not DEVBIRDS.is_dir():
        sys.exit(f"devbirds not found at {DEVBIRDS}: nothing to measure")
    info, t_start = harness.begin()
    tuned = f"anchored --autotune {args.trials}"
    cases = {"anchored": ["--head", "anchored"],
             tuned: ["--head", "anchored", "--autotune", str(args.trials)]}
    runs, found = run_cases(cases, args, args.out / "autotune")
    wall = median_wall(runs)
    per_trial = (wall[tuned] - wall["anchored"]) / args.trials
    section = "\n".join([
        "## `--autotune` on devbirds (`bench/bench_autotune.py`)",
        "",
        harness.generated_by(info, "bench_autotune.py"),
        "",
        f"`edgebird train devbirds --seed 0` with the default head and settings, and with "
        f"`--autotune {args.trials}` (optuna TPE over the anchored head's C and positive "
        f"weight; each trial a 3-fold grouped CV scored by macro AUPRC), embedding store warm, "
        f"{args.runs} run(s) round-robin, median. MB = 10^6 bytes.",
        "",
        *table(runs, found),
        "",
        f"- The search adds {wall[tuned] - wall['anchored']:.0f} s "
        f"({per_trial:.1f} s per trial) to {wall['anchored']:.0f} s.",
        "- The tuned row's CV figures lean optimistic (the search scored folds of the same "
        "recordings); the held-out species false positives were never scored by it.",
        *harness.caution([x.other_load for rs in runs.values() for x in rs],
                         "these runs", "their times are high"),
    ])
    harness.publish(section, info, t_start, "bench_autotune", write=not args.no_docs)


if __name__ == "__main__":
    main()
