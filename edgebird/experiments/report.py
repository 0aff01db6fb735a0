"""Tables, the learning-curve plot and EXPERIMENTS.md for ``edgebird experiment``.

Conclusions are computed, not written by hand: a comparison is called better or worse only
when its paired 95 % interval over repeats excludes zero, and "no clear difference"
otherwise, so a rerun on other data says what that data shows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgebird.core.files import atomic_write_bytes
from edgebird.experiments.fewshot import METRICS, paired_difference, summarise

METRIC_NAMES = {"f1": "macro F1", "auprc": "AUPRC", "auroc": "AUROC",
                "sensitivity": "sensitivity", "specificity": "specificity",
                "noise_fp": "noise FP", "unseen_fp": "unseen-species FP"}


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    """Rows as CSV (columns: the union of keys in first-seen order), written atomically."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_bytes(Path(path), buf.getvalue().encode())
    return Path(path)


def _num(v: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(row: dict, metric: str) -> str:
    m, lo, hi = row[metric], row[metric + "_lo"], row[metric + "_hi"]
    if not np.isfinite(m):
        return "n/a"
    if not np.isfinite(lo):
        return _num(m)
    return f"{_num(m)} [{_num(lo, 2)}, {_num(hi, 2)}]"


def plot_curve(summary: Sequence[dict], path: Path, title: str = "") -> Path:
    """Macro F1 and AUPRC against shots per class, one line per backbone + head, shaded
    95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100, sharex=True)
    combos = list(dict.fromkeys((r["backbone"], r["head"]) for r in summary))
    cmap = plt.get_cmap("tab20")
    for i, (b, h) in enumerate(combos):
        rows = sorted((r for r in summary if (r["backbone"], r["head"]) == (b, h)),
                      key=lambda r: r["shots"])
        k = [r["shots"] for r in rows]
        style = "-" if b == "birdnet" else ("--" if b == "birdnet-fusion" else ":")
        for ax, metric in zip(axes, ("f1", "auprc"), strict=True):
            m = np.array([r[metric] for r in rows])
            lo, hi = (np.array([r[metric + s] for r in rows]) for s in ("_lo", "_hi"))
            ax.plot(k, m, style, marker="o", ms=3, color=cmap(i % 20), label=f"{b} + {h}")
            ok = np.isfinite(lo)
            if ok.any():
                ax.fill_between(np.array(k)[ok], lo[ok], hi[ok], color=cmap(i % 20), alpha=0.12)
    shots = sorted({r["shots"] for r in summary})
    for ax, metric in zip(axes, ("f1", "auprc"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(shots, [str(k) for k in shots])
        ax.minorticks_off()
        ax.set_xlabel("training windows per class (shots)")
        ax.set_ylabel(f"{METRIC_NAMES[metric]} on held-out recordings")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_title("macro F1 at 0.5 (95 % interval over repeats)")
    axes[1].set_title("macro AUPRC")
    axes[1].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def curve_tables(summary: Sequence[dict], shots: Sequence[int]) -> list[str]:
    """Markdown: macro F1 per shot count for every candidate, then every metric at the
    largest shot count and at 1-5 shots."""
    combos = list(dict.fromkeys((r["backbone"], r["head"]) for r in summary))
    at = {(r["backbone"], r["head"], r["shots"]): r for r in summary}
    lines = ["| backbone | head | " + " | ".join(f"k={k}" for k in shots) + " |",
             "|---|---|" + "--:|" * len(shots)]
    for b, h in combos:
        cells = [_ci(at[b, h, k], "f1") if (b, h, k) in at else "" for k in shots]
        lines.append(f"| {b} | {h} | " + " | ".join(cells) + " |")
    for k in sorted({max(shots), *[s for s in shots if s <= 5]}, reverse=True):
        lines += ["", f"All metrics at {k} shot{'s' if k > 1 else ''} per class (mean "
                  "[95 % interval]):", "",
                  "| backbone | head | " + " | ".join(METRIC_NAMES[m] for m in METRICS) + " |",
                  "|---|---|" + "--:|" * len(METRICS)]
        for b, h in combos:
            if (b, h, k) in at:
                lines.append(f"| {b} | {h} | " + " | ".join(_ci(at[b, h, k], m)
                                                          for m in METRICS) + " |")
    return lines


def verdict(d: dict, lower_is_better: bool = False) -> str:
    """A paired difference's meaning: better / worse only when its interval excludes 0."""
    if not np.isfinite(d["lo"]):
        return "too few repeats to tell"
    up, down = ("worse", "better") if lower_is_better else ("better", "worse")
    if d["lo"] > 0:
        return up
    if d["hi"] < 0:
        return down
    return "no clear difference"


def comparison_lines(rows: Sequence[dict], a: dict, b: dict, label: str,
                     metric: str = "f1") -> list[str]:
    """A paired comparison per shot count as markdown table rows (empty if either side is
    missing)."""
    diffs = paired_difference(rows, a, b, metric)
    return [f"| {label} | {d['shots']} | {d['diff']:+.3f} [{_num(d['lo'], 3)}, "
            f"{_num(d['hi'], 3)}] | {verdict(d)} |" for d in diffs]


def standard_comparisons(rows: Sequence[dict]) -> list[tuple[str, dict, dict]]:
    """The questions the research asks, as (label, a, b) filters; those the rows can answer."""
    have = {(r["backbone"], r["head"]) for r in rows}
    qs = []
    for h in ("svm-linear", "svm-rbf", "logreg"):
        qs.append((f"fusion vs final embedding ({h})", {"backbone": "birdnet-fusion", "head": h},
                   {"backbone": "birdnet", "head": h}))
        qs.append((f"BirdNET vs hand-crafted ({h})", {"backbone": "birdnet", "head": h},
                   {"backbone": "handcrafted", "head": h}))
    for h in ("svm-linear", "svm-rbf", "dense", "knn", "prototype"):
        qs.append((f"{h} vs logreg (BirdNET)", {"backbone": "birdnet", "head": h},
                   {"backbone": "birdnet", "head": "logreg"}))
    qs.append(("dense-mixup vs dense (BirdNET)", {"backbone": "birdnet", "head": "dense-mixup"},
               {"backbone": "birdnet", "head": "dense"}))
    return [(label, a, b) for label, a, b in qs
            if (a["backbone"], a["head"]) in have and (b["backbone"], b["head"]) in have]


def findings(curve_rows: Sequence[dict], pseudo=None) -> list[str]:
    """The headline answers, computed: each standard comparison's verdict by shot count, the
    false positives at the largest shot count, and what pseudo-labelling changed."""
    lines = ["## Findings (computed from the tables below)", ""]
    for label, a, b in standard_comparisons(curve_rows):
        by = {}
        for d in paired_difference(curve_rows, a, b):
            by.setdefault(verdict(d), []).append(f"{d['shots']}")
        parts = [f"{v} at k = {', '.join(ks)}" for v, ks in by.items()]
        lines.append(f"- {label}, macro F1: " + "; ".join(parts) + ".")
    summary = summarise(curve_rows)
    top = max(r["shots"] for r in summary)
    at_top = sorted((r for r in summary if r["shots"] == top), key=lambda r: -r["f1"])
    if at_top:
        best = at_top[0]
        worst_fp = max(at_top, key=lambda r: r["unseen_fp"])
        lines.append(f"- At k = {top}: best macro F1 {best['f1']:.3f} ({best['backbone']} + "
                     f"{best['head']}); unseen-species false positives range "
                     f"{min(r['unseen_fp'] for r in at_top):.2f} to {worst_fp['unseen_fp']:.2f} "
                     f"({worst_fp['backbone']} + {worst_fp['head']}); noise false positives at "
                     f"most {max(r['noise_fp'] for r in at_top):.3f}.")
    if pseudo is not None:
        s = pseudo.settings
        base = sorted((r for r in summarise(pseudo.rows, ("pos_weight", "round"))
                       if r["round"] == 0), key=lambda r: r["pos_weight"])
        if len(base) > 1:
            lines.append(
                f"- Loss weighting alone ({pseudo.head}, {s.shots} labelled windows per class, "
                "no pseudo labels), positive weight -> sensitivity / specificity / unseen-"
                "species FP: " + "; ".join(
                    f"{r['pos_weight']:g} -> {r['sensitivity']:.3f} / {r['specificity']:.3f}"
                    f" / {r['unseen_fp']:.3f}" for r in base) + ".")
        for w in s.pos_weights:
            (d,) = paired_difference(pseudo.rows, {"pos_weight": w, "round": s.rounds},
                                     {"pos_weight": w, "round": 0}, "f1", by=()) or [None]
            if d is None:
                continue
            last = [r for r in pseudo.rows if r["pos_weight"] == w and r["round"] == s.rounds]
            prec = [r["pseudo_precision"] for r in last if np.isfinite(r["pseudo_precision"])]
            lines.append(f"- Pseudo-labelling ({pseudo.head}, positive weight {w:g}, "
                         f"{s.shots} labelled windows per class): macro F1 {d['diff']:+.3f} "
                         f"after {s.rounds} rounds, {verdict(d)}; "
                         f"{np.mean([r['pseudo_labels'] for r in last]):.1f} pseudo labels, "
                         f"{np.mean(prec) if prec else float('nan'):.0%} of those checkable "
                         "right.")
    return lines


def curve_section(result, title: str = "Learning curves") -> tuple[list[str], list[dict]]:
    """Markdown for a curve run, and its summary rows."""
    summary = summarise(result.rows)
    n_rep = len(result.splits)
    lines = [f"## {title}", "",
             f"{n_rep} repeats; shots {', '.join(map(str, result.shots))} per class"
             + (f" (asked-for {', '.join(map(str, result.dropped))} dropped: the smallest "
                f"class has {result.limit} training windows per split)" if result.dropped
                else "") + f"; {len(result.rows)} fits in {result.seconds:.0f} s.", "",
             "Macro F1 at 0.5 on held-out recordings, mean [95 % interval over repeats]:", ""]
    lines += curve_tables(summary, result.shots)
    comps = [line for label, a, b in standard_comparisons(result.rows)
             for line in comparison_lines(result.rows, a, b, label)]
    if comps:
        lines += ["", "Paired differences in macro F1 (same splits and draws; better/worse "
                  "only when the 95 % interval excludes 0):", "",
                  "| comparison | shots | difference [95 % interval] | verdict |",
                  "|---|--:|--:|---|", *comps]
    return lines, summary


def pseudo_section(result) -> tuple[list[str], list[dict]]:
    """Markdown for a pseudo-labelling run, and its summary rows."""
    keys = ("pos_weight", "round")
    metrics = (*METRICS, "pseudo_labels", "pseudo_precision")
    summary = summarise(result.rows, keys, metrics)
    s = result.settings
    lines = ["## Pseudo-labelling", "",
             f"{result.backbone} + {result.head}, {s.shots} labelled windows per class, "
             f"{s.rounds} rounds, threshold {s.threshold:g}, at most {s.cap} new labels per "
             f"class and round, pseudo-labelled rows weigh {s.weight:g}. Unlabelled pool per "
             "split: " + ", ".join(f"{v} {k}" for k, v in result.pool_sizes.items())
             + f". {len(result.rows)} fits in {result.seconds:.0f} s.", "",
             "| positive weight | round | " + " | ".join(METRIC_NAMES[m] for m in METRICS)
             + " | pseudo labels | their precision |",
             "|--:|--:|" + "--:|" * (len(METRICS) + 2)]
    for r in sorted(summary, key=lambda r: (r["pos_weight"], r["round"])):
        lines.append(f"| {r['pos_weight']:g} | {r['round']} | "
                     + " | ".join(_ci(r, m) for m in METRICS)
                     + f" | {r['pseudo_labels']:.1f} | {_num(r['pseudo_precision'])} |")
    lines += ["", "Last round minus round 0, paired per repeat (better/worse only when the "
              "95 % interval excludes 0):", "",
              "| positive weight | metric | difference [95 % interval] | verdict |",
              "|--:|---|--:|---|"]
    for w in s.pos_weights:
        for m in ("f1", "auprc", "sensitivity", "specificity", "noise_fp", "unseen_fp"):
            d = paired_difference(result.rows, {"pos_weight": w, "round": s.rounds},
                                  {"pos_weight": w, "round": 0}, m, by=())
            if d:
                d = d[0]
                lines.append(f"| {w:g} | {METRIC_NAMES[m]} | {d['diff']:+.3f} "
                             f"[{_num(d['lo'])}, {_num(d['hi'])}] | "
                             f"{verdict(d, lower_is_better=m.endswith('_fp'))} |")
    return lines, summary


def protocol_lines() -> list[str]:
    return [
        "## Protocol", "",
        "- Splits by recording: each repeat holds out a share of every class's recordings "
        "for testing; no recording is on both sides (tested).",
        "- Open set: each repeat leaves one class out of training altogether; "
        "*unseen-species FP* is the share of its windows on which any trained class fires.",
        "- Shots are windows per class, drawn so that every recording gives one before any "
        "gives two; the draws are nested (the 4-shot set holds the 2-shot set).",
        "- Every fit also trains on 64 synthetic noise windows (rain, wind, engines, hiss, a "
        "quiet floor) as background; *noise FP* is measured on 100 other noise windows.",
        "- F1, sensitivity and specificity are at score 0.5, each head's own decision point "
        "(no threshold is tuned: at 1-5 shots there is no data to tune it on); AUPRC and "
        "AUROC need no threshold. Macro = mean over the trained classes.",
        "- Every backbone and head sees the same splits and draws, so differences are paired "
        "per repeat; intervals are 95 % t intervals over repeats.",
    ]


def write_markdown(path: Path, title: str, intro: Sequence[str],
                   sections: Sequence[Sequence[str]]) -> Path:
    lines = [f"# {title}", "", *intro, ""]
    for sec in sections:
        lines += [*sec, ""]
    atomic_write_bytes(Path(path), "\n".join(lines).encode())
    return Path(path)
