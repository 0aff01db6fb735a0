"""The evaluation's outputs: ``evaluation.csv`` and ``.json``, ``EVALUATION.md``, the PR curve
and the threshold plot, and (opt-in) the thresholds that reach the target precision.

A figure that was not measured is written as empty (CSV), ``null`` (JSON) or in words
("no positives", "no detections") in the report, never as a number.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

from edgebird.core.files import atomic_write_bytes
from edgebird.evaluation.evaluate import Evaluation
from edgebird.evaluation.metrics import SWEEP, Counts, macro

COLUMNS = ("class", "threshold", "threshold_source", "annotations", "tp", "fp", "fn",
           "duplicates", "precision", "recall", "f1", "ap", "ap_at_threshold", "hours",
           "fp_per_hour", "target_threshold", "target_recall")


def _num(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def rows(ev: Evaluation) -> list[dict]:
    """One row per class, then the macro row (means over classes with annotations)."""
    out = []
    target = ev.settings.target_precision
    for cls, curve in ev.curves.items():
        t = ev.thresholds[cls]
        c = curve.at(t)
        hit = curve.threshold_for(target)
        out.append({"class": cls, "threshold": t, "threshold_source": ev.threshold_source[cls],
                    "annotations": curve.positives, "tp": c.tp, "fp": c.fp, "fn": c.fn,
                    "duplicates": c.duplicates, "precision": _num(c.precision),
                    "recall": _num(c.recall), "f1": _num(c.f1),
                    "ap": _num(curve.average_precision()),
                    "ap_at_threshold": _num(curve.average_precision(t)),
                    "hours": _num(curve.hours), "fp_per_hour": _num(c.fp_per_hour, 3),
                    "target_threshold": None if hit is None else _num(hit.threshold),
                    "target_recall": None if hit is None else _num(hit.recall)})
    pos = [r for r in out if r["annotations"]]
    m = {k: _num(macro([r[k] for r in pos])) for k in
         ("precision", "recall", "f1", "ap", "ap_at_threshold")}
    out.append({**{k: None for k in COLUMNS}, "class": "(macro)", **m,
                "fp_per_hour": _num(macro([r["fp_per_hour"] for r in out]), 3)})
    return out


def sweep(ev: Evaluation) -> list[dict]:
    out = []
    for cls, curve in ev.curves.items():
        for t in SWEEP:
            c: Counts = curve.at(t)
            out.append({"class": cls, **{k: _num(v) if isinstance(v, float) else v
                                         for k, v in asdict(c).items()}})
    return out


def _csv(table: list[dict], columns: tuple[str, ...]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in table:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in columns})
    return buf.getvalue().encode()


def _say(v: float | None, missing: str, digits: int = 3) -> str:
    return missing if v is None else f"{v:.{digits}f}"


def markdown(ev: Evaluation, table: list[dict]) -> str:
    s = ev.settings
    lines = ["# Evaluation", "",
             f"{ev.tables} result tables, {ev.detections} detections; "
             f"{ev.not_evaluated} not evaluated (class or recording without ground truth). "
             f"Audio evaluated: {ev.hours:.3f} h, duration from {ev.duration_source}.", "",
             f"Matching: a detection is a true positive when it overlaps a not yet matched "
             f"annotation of its class by at least {s.min_overlap:g} s (the whole annotation "
             "when shorter), taken greedily by score; detections of an annotation already "
             "matched are duplicates (neither true nor false); annotated recordings count as "
             "fully annotated for the annotated classes. AP is over the detections in the "
             "tables (scores below the analysis' own threshold are not there).", "",
             "| class | threshold | annotations | TP | FP | FN | precision | recall | F1 | AP "
             f"| FP/hour | threshold for precision {s.target_precision:g} (recall) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        macro_row = r["class"] == "(macro)"
        no_pos = "" if macro_row else "no positives"
        no_det = "" if macro_row else "no detections"
        if r["target_threshold"] is not None:
            target = f"{r['target_threshold']:.3f} ({r['target_recall']:.3f})"
        else:
            target = "" if macro_row else "not reached"
        cells = [r["class"], "" if macro_row else f"{r['threshold']:g}",
                 *("" if r[k] is None else str(r[k]) for k in
                   ("annotations", "tp", "fp")),
                 "" if r["fn"] is None else str(r["fn"]),
                 _say(r["precision"], no_det), _say(r["recall"], no_pos),
                 _say(r["f1"], no_pos), _say(r["ap"], no_pos),
                 _say(r["fp_per_hour"], "" if macro_row else "no audio", 2), target]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if ev.missing:
        notes.append(f"- {len(ev.missing)} annotated recordings have no result table or "
                     f"detection (their annotations count as missed), e.g. {ev.missing[0]}")
    if ev.unmatched_files:
        notes.append(f"- {ev.unmatched_files} recordings in the tables are not in the "
                     "annotations nor in an absent list (not evaluated)")
    if ev.ambiguous:
        notes.append(f"- {len(ev.ambiguous)} recordings match several annotated recordings "
                     f"equally (not evaluated), e.g. {ev.ambiguous[0]}")
    if ev.failed:
        notes.append(f"- {len(ev.failed)} tables could not be read, e.g. {ev.failed[0]}")
    if notes:
        lines += ["", "## Notes", "", *notes]
    lines += ["", "![PR curve](pr_curve.png)", "", "![threshold](threshold_curve.png)", ""]
    return "\n".join(lines)


def plots(ev: Evaluation, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for cls, curve in ev.curves.items():
        t, p, r = curve.curve()
        if curve.has_positives and t.size:
            ax.step(r, p, where="post", label=cls)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="precision-recall per class")
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "pr_curve.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (cls, curve) in enumerate(ev.curves.items()):
        t, p, r = curve.curve()
        if not t.size:
            continue
        color = f"C{i % 10}"
        ax.plot(t, p, color=color, label=f"{cls} precision")
        if curve.has_positives:
            ax.plot(t, r, color=color, linestyle="--", label=f"{cls} recall")
    ax.set(xlabel="threshold", ylabel="precision (solid) / recall (dashed)", xlim=(0, 1),
           ylim=(0, 1.02))
    if ax.lines:
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "threshold_curve.png", dpi=100)
    plt.close(fig)


def thresholds_csv(ev: Evaluation) -> tuple[bytes, list[str]]:
    """``Class,Threshold`` for the classes whose target precision was reached (what
    ``core.labels.read_thresholds`` reads) and the classes left out."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Class", "Threshold"])
    left = []
    for cls, curve in ev.curves.items():
        hit = curve.threshold_for(ev.settings.target_precision)
        if hit is None:
            left.append(cls)
        else:
            w.writerow([cls, f"{hit.threshold:.6g}"])
    return buf.getvalue().encode(), left


def write(ev: Evaluation, out: Path) -> list[str]:
    """Write every output into ``out``; returns the classes the thresholds file left out."""
    out.mkdir(parents=True, exist_ok=True)
    table = rows(ev)
    atomic_write_bytes(out / "evaluation.csv", _csv(table, COLUMNS))
    doc = {"settings": asdict(ev.settings), "hours": ev.hours,
           "duration_source": ev.duration_source, "tables": ev.tables,
           "detections": ev.detections, "not_evaluated": ev.not_evaluated,
           "missing_recordings": ev.missing, "ambiguous": ev.ambiguous, "failed": ev.failed,
           "classes": table[:-1], "macro": table[-1], "sweep": sweep(ev)}
    atomic_write_bytes(out / "evaluation.json", json.dumps(doc, indent=1).encode())
    atomic_write_bytes(out / "EVALUATION.md", markdown(ev, table).encode())
    plots(ev, out)
    left: list[str] = []
    if ev.settings.write_thresholds:
        data, left = thresholds_csv(ev)
        atomic_write_bytes(Path(ev.settings.write_thresholds), data)
    return left
