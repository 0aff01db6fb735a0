"""The training report: metrics.csv / metrics.json, REPORT.md and its pictures."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from edgebird.core.files import atomic_write_bytes
from edgebird.training import birdnet_prior

COLUMNS = ["precision@0.5", "recall@0.5", "f1@0.5", "threshold", "precision@thr", "recall@thr",
           "f1@thr", "auprc", "auroc", "tp", "fp", "tn", "fn", "positives", "windows"]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def metrics_table(result) -> list[dict]:
    """Rows: every fold's per-class metrics, the mean over folds, the baseline, the test."""
    rows = []
    for f in result.folds:
        rows += [{"model": "head", "split": f"fold{f.fold}", **r} for r in f.metrics]
        rows += [{"model": "logistic", "split": f"fold{f.fold}", **r} for r in f.baseline]
    rows += [{"model": "head", "split": "mean", **r} for r in result.overall]
    rows += [{"model": "logistic", "split": "mean", **r} for r in result.baseline_overall]
    if result.test_metrics:
        rows += [{"model": "head", "split": "test", **r} for r in result.test_metrics]
    return rows


#: The confusion matrix's extra row (true: no species) and column (predicted: nothing fired).
BACKGROUND_ROW, NONE_COLUMN = "background (no species)", "none (no class above its threshold)"


def confusion(result) -> tuple[np.ndarray, list[str], list[str]]:
    """Pooled over folds: true class (or background) vs the top class above its threshold (or
    none). Multi-label windows count once per true label. ``(matrix, rows, columns)``; the
    background row only when some held-out window had no species (an empty row says nothing).
    """
    n = len(result.classes)
    m = np.zeros((n + 1, n + 1), dtype=int)
    for f in result.folds:
        fired = f.test_p >= f.thresholds[None, :]
        masked = np.where(fired, f.test_p, -1.0)
        pred = np.where(fired.any(axis=1), masked.argmax(axis=1), n)
        for y, p in zip(f.test_y, pred, strict=True):
            trues = np.flatnonzero(y > 0.5)
            for t in trues if len(trues) else [n]:
                m[t, p] += 1
    rows, cols = confusion_labels(result.classes, bool(m[n].any()))
    return m[:len(rows)], rows, cols


def confusion_labels(classes: list[str], background: bool) -> tuple[list[str], list[str]]:
    """Row (true) and column (predicted) labels: every class by its full label, then the
    background row (when there is one) and the 'none' column."""
    return list(classes) + ([BACKGROUND_ROW] if background else []), \
        list(classes) + [NONE_COLUMN]


def wrap_label(label: str, width: int = 22) -> str:
    """A label for an axis: ``Scientific_Common`` on two lines, each wrapped at ``width``."""
    import textwrap

    return "\n".join(textwrap.fill(part, width) for part in label.split("_", 1))


def _learning_curves(ax, result) -> None:
    """Each fold's model's loss per epoch; its validation loss dashed, where the history holds
    one (the title says which were drawn)."""
    validated = False
    for f in result.folds:
        h = f.history
        if not h:  # a head without epochs (e.g. logreg)
            continue
        line, = ax.plot(h["loss"], label=f"fold {f.fold} train")
        if "val_loss" in h:
            validated = True
            ax.plot(h["val_loss"], "--", color=line.get_color(), label=f"fold {f.fold} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if not any(f.history for f in result.folds):
        ax.set_title("Learning curves: none (this head trains without epochs)")
    elif validated:
        ax.set_title("Learning curves (solid: training, dashed: inner validation)")
    else:
        ax.set_title("Learning curves: training loss of each fold's model")
    if any(f.history for f in result.folds):
        ax.legend(fontsize=6, ncol=2)


def _plots(result, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = {}
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    _learning_curves(ax, result)
    fig.tight_layout()
    files["learning_curves"] = out / "learning_curves.png"
    fig.savefig(files["learning_curves"])
    plt.close(fig)

    m, rows, cols = confusion(result)
    n = len(cols)
    size = max(5.0, 0.6 * n + 3)
    font = 8 if n <= 12 else 6 if n <= 25 else 4
    fig, ax = plt.subplots(figsize=(size + 1.5, size), dpi=110)
    ax.imshow(m, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(cols)), [wrap_label(c) for c in cols], rotation=60, ha="right",
                  fontsize=font)
    ax.set_yticks(range(len(rows)), [wrap_label(r) for r in rows], fontsize=font)
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=font + 1,
                    color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted (top class above its threshold)")
    ax.set_ylabel("true")
    ax.set_title("Confusion, all folds' held-out windows")
    fig.tight_layout()
    files["confusion"] = out / "confusion_matrix.png"
    fig.savefig(files["confusion"])
    plt.close(fig)
    return files


def write_report(result, out: Path, name: str, model_files: dict[str, Path],
                 dataset_text: str, skipped: list[tuple[str, str]], sha256: dict[str, str],
                 seconds: float, shown_dir: Path | None = None) -> Path:
    """Write the report into ``out``; ``shown_dir``: the folder the model files will be in
    when the report is read (``out`` unless the set is written aside and moved there)."""
    out.mkdir(parents=True, exist_ok=True)
    shown = out if shown_dir is None else Path(shown_dir)
    rows = metrics_table(result)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["model", "split", "class"] + COLUMNS,
                       extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write_bytes(out / "metrics.csv", buf.getvalue().encode())
    payload = {
        "classes": result.classes, "thresholds": dict(zip(result.classes,
                                                          map(float, result.thresholds),
                                                          strict=True)),
        "cross_validated": result.cross_validated, "notes": result.notes,
        "metrics": rows, "noise_false_positives": result.noise_fp,
        "held_out_species": result.holdout, "settings": result.settings.__dict__,
        "site_background_false_positives": result.site_fp,
        "windows_per_class": result.windows,
        "birdnet_restricted": result.birdnet,
        "autotune_trials": result.autotune,
        "folds": [{"fold": f.fold, "best_epoch": f.best_epoch, **f.sizes}
                  for f in result.folds],
        "models": {k: {"file": str(v if shown_dir is None else shown / v.name),
                        "sha256": sha256.get(k)} for k, v in model_files.items()},
    }
    atomic_write_bytes(out / "metrics.json",
                       json.dumps(payload, indent=1, default=float).encode())
    plots = _plots(result, out) if result.cross_validated else {}
    lines = [
        f"# Training report: {name}", "",
        f"{len(result.classes)} classes, {len(result.folds)} fold(s), trained in "
        f"{seconds:.0f} s.", "",
        "## Data", "", "```", dataset_text, "```", "",
    ]
    if skipped:
        lines += ["Files skipped (unreadable, or no usable window):", ""]
        lines += [f"- `{p}`: {r}" for p, r in skipped] + [""]
    if result.notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in result.notes] + [""]
    lines += _quality(result) if result.cross_validated else [
        "## Cross-validation not possible", "",
        "No recording could be held out, so there is no cross-validated figure: how well "
        "the model does on new recordings was not measured, and no precision, recall or F1 is "
        "given. Add recordings: with two per class a held-out measurement is possible (the "
        "default folds adapt, up to five). The false positives below are measured on what "
        "the final model never trained on.", ""]
    lines += birdnet_prior.report_lines(result.birdnet)
    lines += _autotune_lines(result.autotune)
    lines += _false_positives(result)
    lines += ["", "## Models", "",
              "All output logits; apply `sigmoid` (edgebird's analyzer does, with the "
              "sensitivity shift). Each has `_Labels.txt` and `_Thresholds.csv` beside it.", "",
              "| file | kind | size | SHA-256 |", "|---|---|--:|---|"]
    for key, path in model_files.items():
        lines.append(f"| `{path.name}` | {key} | {path.stat().st_size / 1024:.0f} KiB | "
                     f"`{sha256.get(key, '')}` |")
    if plots:
        lines += ["", "## Pictures", "",
                  f"![learning curves]({plots['learning_curves'].name})", "",
                  f"![confusion matrix]({plots['confusion'].name})", ""]
    report = out / "REPORT.md"
    atomic_write_bytes(report, "\n".join(lines).encode())
    return report


def _quality(result) -> list[str]:
    """The cross-validated section: held-out figures of the head and the baseline."""
    macro = result.overall[0]
    base = result.baseline_overall[0]
    lines = [
        "## Cross-validated quality (held-out recordings)", "",
        "Each fold's model never saw the recordings it is scored on; thresholds and early "
        "stopping used an inner validation split of the training recordings.", "",
        "How the thresholds were chosen: in each fold, per class, the F1-optimal threshold "
        "on the inner out-of-fold scores of its training recordings, kept only where a "
        "threshold chosen that way does better than 0.5 on inner scores it was not "
        "chosen on (otherwise 0.5; the notes say which). F1@thr is scored at each fold's own "
        "thresholds; the *threshold* column is the one exported (the median over the folds), "
        "the number in `_Thresholds.csv` (written with two decimals).", "",
        f"- **head, macro F1 at the per-class thresholds: {macro['f1@thr']:.3f}** "
        f"(± {macro.get('f1@thr_std', 0):.3f} over folds); at 0.5: {macro['f1@0.5']:.3f}",
        f"- macro AUPRC {macro['auprc']:.3f}, macro AUROC {macro['auroc']:.3f}",
        f"- logistic-regression baseline on the same folds: macro F1 at 0.5 "
        f"{base['f1@0.5']:.3f}, AUPRC {base['auprc']:.3f}", "",
        "| class | P@thr | R@thr | F1@thr | F1@0.5 | AUPRC | AUROC "
        "| exported threshold | positives |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r, t in zip(result.overall[1:], result.thresholds, strict=True):
        lines.append(f"| {r['class']} | {_fmt(r['precision@thr'])} | {_fmt(r['recall@thr'])} | "
                     f"{_fmt(r['f1@thr'])} | {_fmt(r['f1@0.5'])} | {_fmt(r['auprc'])} | "
                     f"{_fmt(r['auroc'])} | {t:.2f} | {r['positives']} |")
    return lines


def _site_lines(site: dict) -> list[str]:
    """``--background``: false positives per hour on held-out site recordings, or why none."""
    if not site:
        return []
    if "any_per_hour" not in site:
        return [f"- **Site background** (`--background`, {site['recordings']} recording(s), "
                f"{site['trained_windows']} windows trained as background): false positives "
                f"per hour not measured: {site['note']}."]
    lines = [f"- **Site background** (`--background`): {site['held_out_recordings']} of "
             f"{site['recordings']} site recordings ({site['hours'] * 60:.1f} min, "
             f"{site['windows']} windows) held out, never trained on; the final model at its "
             f"exported thresholds fires on **{site['any_per_hour']:.1f} windows per hour** "
             f"(any class; {site['any_windows']} windows). Per class, per hour:"]
    lines += [f"  - {c}: {v:.1f}" for c, v in site["per_class_per_hour"].items()]
    return lines


def _false_positives(result) -> list[str]:
    """Measured on what the final model never trained on: synthetic noise, held-out species,
    an optional separate test set."""
    lines = ["", "## False positives", ""]
    if result.noise_fp:
        n = result.noise_fp
        lines.append(f"- **Noise made in code** (rain, wind, engines, hiss, a quiet floor; "
                     f"{n['windows']} windows never used in training): the final model fires "
                     f"on {n['fp_rate@thr']:.1%} of them at its thresholds "
                     f"({n['fp_rate@0.5']:.1%} at 0.5; highest score {n['max_score']:.3f}).")
    lines += _site_lines(result.site_fp)
    if result.holdout:
        mean = np.mean([h["fp_rate@thr"] for h in result.holdout])
        lines.append(f"- **Species the model never saw**: trained without one class at a "
                     f"time, that class's windows fire some other class on {mean:.1%} of "
                     "windows on average:")
        lines += [f"  - {h['held_out']}: {h['fp_rate@thr']:.1%} of {h['windows']} windows"
                  for h in result.holdout]
    if result.test_metrics:
        t = result.test_metrics[0]
        lines += ["", "## Separate test set (final model)", "",
                  f"macro F1 at the thresholds {t['f1@thr']:.3f}, at 0.5 {t['f1@0.5']:.3f}, "
                  f"AUPRC {t['auprc']:.3f}"]
    return lines


def _autotune_lines(trials: list[dict]) -> list[str]:
    """``--autotune``: each trial's settings and score, the chosen one marked."""
    from edgebird.training.autotune import describe

    if not trials:
        return []
    done = [t for t in trials if t["auprc"] is not None]
    best = max(done, key=lambda t: t["auprc"])["trial"] if done else None
    lines = ["", "## Autotune", "",
             f"{len(trials)} trials (optuna TPE), each scored by the macro AUPRC of a grouped "
             "cross-validation of the training recordings (other folds than the ones above); "
             "pruned: below the median of earlier trials after a fold. The chosen trial's "
             "settings trained every model here (metrics.json, `settings`).", "",
             "| trial | macro AUPRC | settings |", "|--:|--:|---|"]
    for t in trials:
        score = "pruned" if t["auprc"] is None else f"{t['auprc']:.4f}"
        mark = " **(chosen)**" if t["trial"] == best else ""
        lines.append(f"| {t['trial']}{mark} | {score} | {describe(t['params'])} |")
    return lines
