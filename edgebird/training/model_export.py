"""Trained heads → .tflite files users can carry anywhere, plus ``inspect``.

Every model file ``X.tflite`` gets ``X_Labels.txt`` (one label per output, the name
BirdNET-Analyzer, birdnetlib and BirdNET-Go look for) and ``X_Thresholds.csv`` beside it.

All models output **logits** (no sigmoid), as BirdNET's own model and BirdNET-Analyzer's
custom classifiers do; the analyzer applies ``sigmoid`` with the sensitivity shift. The
heads are written directly as FULLY_CONNECTED operators (``tflite_graph``), so no TensorFlow
is needed here, and the standalone audio → scores model is BirdNET with the head appended after
its embedding tensor.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgebird.audio import AudioSettings
from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.core.files import atomic_write_bytes, hash_file
from edgebird.core.labels import read_labels, read_thresholds, write_labels

KINDS = {
    "head": "head only (BirdNET embeddings → custom logits)",
    "replace": "standalone, replace mode (audio → custom logits)",
    "append": "standalone, append mode (audio → BirdNET's logits + custom logits)",
    "base": "a BirdNET-style model without custom classes",
}


def _csv_bytes(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def write_model(path: Path, content: bytes, labels: list[str],
                thresholds: np.ndarray | None) -> Path:
    """A model file with its labels (and thresholds) beside it, each written atomically."""
    atomic_write_bytes(path, content)
    stem = path.with_suffix("")
    write_labels(Path(f"{stem}_Labels.txt"), labels)
    if thresholds is not None:
        rows = [["Class", "Threshold"]] + [[c, f"{t:.2f}"] for c, t in
                                           zip(labels[-len(thresholds):], thresholds,
                                               strict=True)]
        atomic_write_bytes(Path(f"{stem}_Thresholds.csv"), _csv_bytes(rows))
    return path


def params_rows(train_settings, audio: AudioSettings, backbone: str) -> list[list]:
    """BirdNET-Analyzer's ``_Params.csv`` columns (its spelling), then edgebird's own."""
    s = asdict(train_settings)
    bna = [
        ("Hidden units", s["hidden_units"]), ("Dropout", s["dropout"]),
        ("Batchsize", s["batch_size"]), ("Learning rate", s["learning_rate"]),
        ("Crop mode", audio.crop_mode), ("Crop overlap", audio.overlap), ("Audio speed", 1.0),
        ("Upsamling mode", s["upsampling_mode"]), ("Upsamling ratio", s["upsampling_ratio"]),
        ("use mixup", s["mixup"]), ("use label smoothing", s["label_smoothing"] > 0),
        ("use focal loss", s["loss"] == "focal"), ("focal loss alpha", s["focal_alpha"]),
        ("focal loss gamma", s["focal_gamma"]), ("BirdNET Model version", "V2.4"),
    ]
    ours = [(f"edgebird {k}", v) for k, v in s.items()] + [
        ("edgebird fmin", audio.fmin), ("edgebird fmax", audio.fmax),
        ("edgebird min segment", audio.min_segment_seconds), ("edgebird backbone", backbone),
        ("edgebird output", "logits"),
        ("edgebird sensitivity", "logit shift: sigmoid(clip(logit + (S-1)*10, -20, 20))"),
    ]
    return [[k for k, _ in bna + ours], [v for _, v in bna + ours]]


def export_classifier(result, outdir: Path, name: str, audio: AudioSettings,
                      backbone_model: Path, backbone_labels: list[str], save_mode: str,
                      sample_counts: dict[str, int]) -> dict[str, Path]:
    """Write the per-fold heads, the final head, the standalone model(s) and the side files."""
    outdir.mkdir(parents=True, exist_ok=True)
    classes = result.classes
    files: dict[str, Path] = {}
    for fold in result.folds:
        p = outdir / f"{name}_fold{fold.fold}.tflite"
        files[f"fold{fold.fold}"] = write_model(
            p, tflite_graph.dense_head_model(fold.layers, f"edgebird head, fold {fold.fold}"),
            classes, fold.thresholds)
    files["head"] = write_model(outdir / f"{name}_head.tflite",
                                tflite_graph.dense_head_model(result.final.layers),
                                classes, result.thresholds)
    base = backbone_model.read_bytes()
    from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR

    modes = ["replace", "append"] if save_mode == "both" else [save_mode]
    for mode in modes:
        content = tflite_graph.append_dense_head(base, EMBEDDING_TENSOR, result.final.layers,
                                                 mode)
        stem = name if mode == "replace" else f"{name}_append"
        labels = classes if mode == "replace" else backbone_labels + classes
        files[mode] = write_model(outdir / f"{stem}.tflite", content, labels,
                                  result.thresholds)
    atomic_write_bytes(outdir / f"{name}_Params.csv",
                       _csv_bytes(params_rows(result.settings, audio, "BirdNET V2.4")))
    atomic_write_bytes(outdir / f"{name}_sample_counts.csv", _csv_bytes(
        [["Label", "Count"]] + [[k, v] for k, v in sample_counts.items()]))
    return files


#: What ``write_report`` puts beside the models: part of the model set, replaced with it.
REPORT_FILES = ("REPORT.md", "metrics.csv", "metrics.json", "learning_curves.png",
                "confusion_matrix.png")


def model_set_files(folder: Path, name: str) -> list[Path]:
    """The files of model set ``name`` in ``folder``: those ``edgebird train`` writes (the
    stem's model and side files, ``_foldK*``, ``_head*``, ``_append*``, the report and its
    pictures), never anything else a user keeps there."""
    own = {f"{name}{tail}" for tail in (".tflite", "_Labels.txt", "_Thresholds.csv",
                                        "_Params.csv", "_sample_counts.csv")}
    own.update(REPORT_FILES)
    derived = re.compile(re.escape(name) + r"_(fold\d|head|append)")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and (p.name in own or derived.match(p.name)))


@dataclass(frozen=True)
class Published:
    """What replacing a model set did: the earlier set's files, and those of them the new set
    did not overwrite (stale, removed)."""

    earlier: tuple[Path, ...]
    stale: tuple[Path, ...]

    def message(self, out: Path, name: str) -> str:
        if not self.earlier:
            return ""
        return (f"replaced the earlier model '{name}' in {out} ({len(self.earlier)} files; "
                f"{len(self.stale)} stale file(s) removed"
                + (": " + ", ".join(p.name for p in self.stale[:8])
                   + (" ..." if len(self.stale) > 8 else "") if self.stale else "") + ")")


def publish_model_set(staging: Path, out: Path, name: str) -> Published:
    """Move the complete new set from ``staging`` into ``out`` and remove the earlier set's
    files it did not overwrite. Done only once the whole new set is written, so a failed or
    interrupted training leaves the earlier set as it was; each file lands by rename."""
    out.mkdir(parents=True, exist_ok=True)
    earlier = model_set_files(out, name)
    new = sorted(p for p in staging.iterdir() if p.is_file())
    for p in new:
        os.replace(p, out / p.name)
    names = {p.name for p in new}
    stale = [p for p in earlier if p.name not in names]
    for p in stale:
        p.unlink(missing_ok=True)
    return Published(tuple(earlier), tuple(stale))


@contextmanager
def staged_model_set(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out`` (the same file system, so files move by rename; inside
    ``out`` when its parent cannot be written) for a new model set, removed afterwards."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".edgebird-train",
                                    dir=out.parent))
    except OSError:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".edgebird-train.", dir=out))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def inspect_model(path: str | Path) -> dict:
    """Describe a .tflite model: kind, shapes, classes, thresholds, params, size, SHA-256.

    Raises ValueError with a clear message for anything that is not a TFLite model."""
    from edgebird.core.runtime import make_interpreter

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != tflite_graph.FILE_IDENTIFIER:
        raise ValueError(f"{path} is not a TFLite model (no 'TFL3' identifier); expected a "
                         ".tflite file written by edgebird or BirdNET-Analyzer")
    try:
        interp = make_interpreter(model_path=str(path))
    except Exception as exc:  # noqa: BLE001 - any loader failure means an unusable file
        raise ValueError(f"{path} could not be loaded as a TFLite model: {exc}") from None
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    n_in, n_out = int(inp["shape"][-1]), int(outs[0]["shape"][-1])
    stem = path.with_suffix("")
    labels_file = Path(f"{stem}_Labels.txt")
    labels = read_labels(labels_file) if labels_file.is_file() else None
    if n_in != 144000:
        kind = "head"
    elif labels and len(labels) == n_out and n_out > 6522:
        kind = "append"
    elif n_out == 6522 and (not labels or len(labels) == 6522):
        kind = "base"
    else:
        kind = "replace"
    info = {
        "file": str(path), "kind": kind, "description": KINDS[kind],
        "input_shape": [int(v) for v in inp["shape_signature"]],
        "output_shape": [int(v) for v in outs[0]["shape_signature"]],
        "outputs": len(outs), "size_bytes": path.stat().st_size,
        "sha256": hash_file(path, "sha256"), "labels_file": str(labels_file) if labels else None,
        "classes": labels[-(n_out - 6522):] if kind == "append" and labels else labels,
        "warnings": [],
    }
    if labels is None:
        info["warnings"].append(f"no labels file {labels_file.name} beside the model")
    elif len(labels) != n_out:
        info["warnings"].append(f"the labels file has {len(labels)} lines but the model has "
                                f"{n_out} outputs: they do not belong together")
    thr = Path(f"{stem}_Thresholds.csv")
    if thr.is_file():
        try:
            info["thresholds"] = read_thresholds(thr)
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # the parser analyze uses
            info["warnings"].append(f"{exc}; analyze and the field recorder refuse this "
                                    "thresholds file: fix or delete it")
        else:
            unknown = sorted(set(info["thresholds"]) - set(info["classes"] or ()))
            if unknown and info["classes"]:
                info["warnings"].append(
                    f"{thr}: {len(unknown)} threshold class(es) are not labels of the model"
                    f" and are ignored: {', '.join(unknown[:5])}")
    for cand in (Path(f"{stem}_Params.csv"), path.parent / f"{path.stem.split('_')[0]}_Params.csv"):
        if cand.is_file():
            with open(cand, newline="") as f:
                rows = list(csv.reader(f))
            if len(rows) >= 2:
                info["params"] = dict(zip(rows[0], rows[1], strict=False))
            break
    return info


def format_inspection(info: dict) -> str:
    lines = [f"{info['file']}", f"  kind: {info['description']}",
             f"  input {info['input_shape']} -> output {info['output_shape']} (logits)",
             f"  size: {info['size_bytes'] / 1024:.1f} KiB, sha256 {info['sha256']}"]
    classes = info.get("classes") or []
    thresholds = info.get("thresholds", {})
    if classes:
        lines.append(f"  {len(classes)} custom classes:" if info["kind"] != "base"
                     else f"  {len(classes)} classes")
        for c in classes[:50]:
            t = thresholds.get(c)
            lines.append(f"    {c}" + (f"  (threshold {t:.2f})" if t is not None else ""))
        if len(classes) > 50:
            lines.append(f"    ... and {len(classes) - 50} more")
    if info.get("params"):  # one per line: a cut JSON line hid the later settings
        lines.append("  params:")
        lines += [f"    {k}: {v}" for k, v in info["params"].items()]
    lines += [f"  warning: {w}" for w in info["warnings"]]
    return "\n".join(lines)


def inspect_folder(folder: str | Path) -> list[tuple[Path, dict | str]]:
    """``(file, info or the reason it is unusable)`` for every ``.tflite`` in ``folder``, so
    ``inspect`` on a training output names its models instead of saying "no such file"."""
    folder = Path(folder)
    found: list[tuple[Path, dict | str]] = []
    for path in sorted(folder.glob("*.tflite")):
        try:
            found.append((path, inspect_model(path)))
        except ValueError as exc:
            found.append((path, str(exc)))
    if not found:
        below = sorted({str(p.parent) for p in folder.glob("*/**/*.tflite")})[:5]
        hint = f" (there are some in {', '.join(below)})" if below else ""
        raise ValueError(f"no .tflite models in the folder {folder}{hint}")
    return found


def format_folder(folder: str | Path, found: list[tuple[Path, dict | str]]) -> str:
    """One line per model: its file, kind and class count; the classes once when the models
    share them (a training output's do). Inspect a file for the details."""
    width = max(len(p.name) for p, _ in found)
    lines = [f"{folder}: {len(found)} model(s); inspect one file for shapes, thresholds and "
             "params"]
    class_sets = {tuple(i.get("classes") or ()) for _, i in found if isinstance(i, dict)}
    shared = len(class_sets) == 1
    for path, info in found:
        if isinstance(info, str):
            lines.append(f"  {path.name:<{width}}  unusable: {info}")
            continue
        classes = info.get("classes") or []
        if not classes:
            what = "no labels file"
        else:
            what = f"{len(classes)} classes" + ("" if shared else f": {_some(classes)}")
        use = "  <- analyze -c this" if info["kind"] in ("replace", "append") else ""
        lines.append(f"  {path.name:<{width}}  {info['description']}; {what}{use}")
    if shared and class_sets != {()}:
        lines.append(f"  classes: {_some(list(next(iter(class_sets))))}")
    return "\n".join(lines)


def _some(classes: list[str], n: int = 10) -> str:
    more = f", ... ({len(classes)} in all)" if len(classes) > n else ""
    return ", ".join(classes[:n]) + more
