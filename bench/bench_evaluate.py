"""Benchmark ``edgebird evaluate``: 10,000 result tables against their annotations in under a
minute (issue 20).

What is measured, and why: users evaluate whole deployments (BirdNET-Analyzer's evaluation
tab hangs on 2,200 tables, BNA #295), so the number that matters is the whole command on many
small tables. 10,000 recordings of 60 s are generated in code (timed separately, not part of
the result): per recording a Raven selection table (``analyze``'s default format, one row per
detection, with ``Begin Path``), with seeded detections of 5 classes (true calls found at
scores around 0.7, missed calls, false alarms around 0.4, duplicates of long songs), and one
``file,begin,end,label`` annotation CSV for all of them, plus an absent list for a sixth class.
``edgebird evaluate RESULTS -a ANN --absent ABSENT -o OUT --write-thresholds ...`` then runs as
a separate process (``harness.run_process``: wall time and peak memory of the process tree),
median of ``--runs`` (3). Durations come from the tables' extent (no audio: reading 10,000
files' headers would measure the disk, not evaluate).
"""

from __future__ import annotations

import csv
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

NAME = "bench_evaluate"
DEFAULT_OUT = h.OUT / "evaluate"
TARGET_S = 60.0
CLASSES = tuple(f"Genus{i} species{i}_Bird {i}" for i in range(5))


def generate(out: Path, n: int, seed: int = 0) -> tuple[Path, Path, Path, int]:
    """``n`` per-file Raven tables under ``out/results``, their annotations and an absent
    list; returns the three paths and the number of detections written."""
    from edgebird.core.scores import Detection
    from edgebird.core.writers.formats import FORMATS, TableContext

    rng = np.random.default_rng(seed)
    fmt = FORMATS["table"]
    results = out / "results"
    if out.exists():
        shutil.rmtree(out)
    results.mkdir(parents=True)
    ann_rows, absent_rows, total = [], [], 0
    for i in range(n):
        audio = f"/field/site{i % 50}/rec{i:05d}.wav"
        dets = []
        for cls in rng.choice(len(CLASSES), size=2, replace=False):
            label = CLASSES[cls]
            short = label.split("_")[1]
            for _ in range(int(rng.integers(1, 4))):
                start = float(rng.integers(0, 17)) * 3.0
                length = float(rng.uniform(1.0, 6.0))
                ann_rows.append((audio, start + 0.5, start + 0.5 + length, short))
                if rng.random() < 0.8:  # found, maybe twice (a long song)
                    dets.append(Detection(audio, start, start + 3, label,
                                          float(rng.uniform(0.4, 1.0))))
                    if length > 3 and rng.random() < 0.5:
                        dets.append(Detection(audio, start + 3, start + 6, label,
                                              float(rng.uniform(0.3, 0.9))))
            if rng.random() < 0.5:  # a false alarm
                start = float(rng.integers(17, 20)) * 3.0
                dets.append(Detection(audio, start, start + 3, label,
                                      float(rng.uniform(0.1, 0.7))))
        if rng.random() < 0.1:
            absent_rows.append((audio, "Other bird"))
            dets.append(Detection(audio, 0, 3, "Other bird_Other bird",
                                  float(rng.uniform(0.1, 0.6))))
        dets.sort(key=lambda d: (d.start, -d.confidence))
        total += len(dets)
        (results / f"rec{i:05d}{fmt.suffix}").write_text(
            fmt.render(dets, TableContext(audio)), encoding="utf-8")
    ann, absent = out / "annotations.csv", out / "absent.csv"
    for path, head, rows in ((ann, ["file", "begin", "end", "label"], ann_rows),
                             (absent, ["file", "label"], absent_rows)):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(head)
            w.writerows(rows)
    return results, ann, absent, total


def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="1,000 tables, one run", runs="runs of evaluate (3)",
                      out=DEFAULT_OUT)
    args = h.resolve(parser, parser.parse_args(argv))
    info, t_start = h.begin(birdnet=False)
    n = 1_000 if args.quick else 10_000
    print(f"generating {n} tables ...", flush=True)
    t0 = time.perf_counter()
    results, ann, absent, dets = generate(args.out / "data", n)
    gen_s = time.perf_counter() - t0
    print(f"  {gen_s:.1f} s, {dets} detections", flush=True)
    report = args.out / "report"
    cmd = [*h.edgebird_command(), "evaluate", str(results), "-a", str(ann), "--absent",
           str(absent), "-o", str(report), "--write-thresholds",
           str(args.out / "new_Thresholds.csv")]
    runs = []
    for r in range(args.runs):
        run = h.run_process(cmd)
        runs.append(run)
        print(f"  run {r + 1}: {run.wall:.2f} s, peak {run.peak_tree_rss_mb:.0f} MB, other CPU "
              f"{100 * run.other_load:.0f}%", flush=True)
    walls = [r.wall for r in runs]
    wall = statistics.median(walls)
    peak = max(r.peak_tree_rss_mb for r in runs)
    summary = [ln for ln in runs[-1].stdout.splitlines() if ln.startswith(tuple("0123456789"))]
    ok = wall < TARGET_S * n / 10_000
    target = f"{n:,} tables in under {TARGET_S * n / 10_000:.0f} s"
    lines = [
        "## Evaluate: 10,000 result tables against annotations", "",
        h.generated_by(info, "bench_evaluate.py", args.quick), "",
        f"- Target: {target}: {h.verdict(ok)} (median {wall:.1f} s of {args.runs}: "
        f"{h.fmt_list(walls, 1)} s; {n / wall:,.0f} tables/s; peak memory {peak:.0f} MB).",
        *h.caution([r.other_load for r in runs]),
        "",
        f"Input (generated in code in {gen_s:.1f} s, not timed): {n:,} per-file Raven "
        f"selection tables, {dets:,} detections of 5 classes (plus a sixth in an absent list), "
        "one annotation CSV; durations from the tables' extent. The command as a whole "
        "process (`harness.run_process`), from start to the written report, plots and "
        "thresholds file: reading every table (`read_results`), matching, metrics, sweep.",
        "",
        f"Its summary line: `{summary[0] if summary else '?'}`",
        "",
        "| run | wall (s) | peak memory (MB) | other CPU |",
        "|---|---|---|---|",
        *(f"| {i + 1} | {r.wall:.2f} | {r.peak_tree_rss_mb:.0f} | {100 * r.other_load:.0f}% |"
          for i, r in enumerate(runs)),
    ]
    h.publish("\n".join(lines), info, t_start, NAME, write=not args.no_docs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
