"""``edgebird demo``: the whole pipeline on sounds made in code; no data and no network needed.

It synthesizes a small labelled set, embeds it with BirdNET through the same engine and store
that ``edgebird embed`` uses, shows how well the embedding separates the synthetic "species"
(leave-one-out nearest-centroid accuracy, a similarity table and a 2-D picture), then trains a
custom classifier on it with ``edgebird train``'s code (grouped cross-validation, exported
.tflite models, a report), inspects the exported model, and analyzes a synthetic "field
recording" (songs, silence and rain, wind, engine noise in a known order) with it, writing a
Raven selection table as ``edgebird analyze`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgebird.pipeline.embed import embed_files
from edgebird.pipeline.engine import EngineSettings
from edgebird.synth import write_dataset


def run_demo(out: str | Path = "edgebird-demo", clips_per_class: int = 6,
             engine: EngineSettings = EngineSettings(), progress: bool = True,
             echo: Callable[[str], None] = print, train: bool = True) -> dict:
    out = Path(out)
    echo(f"1/5 synthesizing {clips_per_class} clips for each of 4 synthetic songs + noise "
         f"in {out / 'audio'}")
    made = write_dataset(out / "audio", clips_per_class=clips_per_class)
    echo("2/5 embedding them with BirdNET V2.4 (1,024 values per 3-s window)")
    summary = embed_files([out / "audio"], out / "store", engine=engine, progress=progress,
                          echo=echo)
    echo(summary.text())
    by_source = {e.source: e for e in summary.entries}
    labels, vectors = [], []
    for label, paths in made.items():
        for p in paths:
            entry = by_source.get(str(p.resolve()))
            if entry is None:
                continue
            _, embs = entry.load()
            labels.append(label.split("_")[-1])
            vectors.append(embs.mean(axis=0))
    x = np.asarray(vectors)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = np.asarray(labels)
    classes = sorted(set(labels))
    echo("3/5 how well do BirdNET's embeddings separate the songs?")
    correct = 0
    for i in range(len(x)):  # leave-one-out nearest class centroid (cosine)
        keep = np.arange(len(x)) != i
        cents = np.stack([x[keep & (y == c)].mean(axis=0) for c in classes])
        correct += classes[int(np.argmax(cents @ x[i]))] == y[i]
    accuracy = correct / len(x)
    echo(f"  nearest-centroid accuracy, each clip left out in turn: {correct}/{len(x)} "
         f"({accuracy:.0%})")
    sims = x @ x.T
    echo("  mean cosine similarity between clips (rows/cols: " + ", ".join(classes) + ")")
    for a in classes:
        row = [sims[np.ix_(y == a, y == b)] for b in classes]
        vals = [(r.sum() - (np.trace(r) if a == b else 0)) /
                (r.size - (len(r) if a == b else 0)) for r, b in zip(row, classes, strict=True)]
        echo(f"  {a:>16s} " + " ".join(f"{v:5.2f}" for v in vals))
    plot = _plot(x, y, classes, out / "embeddings.png")
    echo(f"  picture of the embeddings (PCA): {plot}")
    result = {"accuracy": accuracy, "n": len(x), "plot": plot, "summary": summary}
    if train:
        run = _train(out, engine, progress, echo)
        result["training"] = run
        if run is not None:
            result["analysis"] = _analyze(out, run.files["replace"], engine, progress, echo)
    return result


#: The demo field recording: 6 s per item, in this order (None = background only).
SCENE = ("Synthetic triller_Triller", None, "Synthetic whistler_Whistler", "rain",
         "Synthetic warbler_Warbler", "wind", "Synthetic caller_Two-note caller", "engine")


def _analyze(out: Path, model: Path, engine: EngineSettings, progress: bool,
             echo: Callable[[str], None]):
    """Step 5: a synthetic field recording analyzed with the trained classifier."""
    import soundfile as sf

    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
    from edgebird.synth import NOISE_KINDS, SR, clip, noise_window

    rng = np.random.default_rng(7)
    parts = []
    for item in SCENE:
        if item in NOISE_KINDS:
            parts.append(np.concatenate([noise_window(item, rng), noise_window(item, rng)]))
        else:
            parts.append(clip(item, rng, 6.0, calls=2))
    scene = out / "field" / "field_recording.wav"
    scene.parent.mkdir(parents=True, exist_ok=True)
    sf.write(scene, np.concatenate(parts).astype(np.float32), SR, subtype="PCM_16")
    echo(f"5/5 analyzing a {6 * len(SCENE)}-s synthetic field recording ({scene}) with the "
         "classifier; truth, 6 s each: " + ", ".join(_name(i) for i in SCENE))
    summary = analyze_files([scene.parent], out / "results", AnalyzeSettings(
        classifier=str(model), rtypes=("table", "csv"), skip_existing=False), engine=engine,
        progress=progress, echo=lambda m: echo("  " + m))
    table = out / "results" / "field_recording.BirdNET.selection.table.txt"
    from edgebird.core.writers.readers import read_results

    for d in read_results(table)[1]:
        truth = _name(SCENE[min(int(d.start // 6), len(SCENE) - 1)])
        echo(f"  {d.start:5.1f}-{d.end:5.1f} s  {d.label:<24s} {d.confidence:.3f}   "
             f"(truth: {truth})")
    echo(f"  Raven selection table: {table}")
    return summary


def _name(item: str | None) -> str:
    return "silence" if item is None else item.split("_")[-1]


def _train(out: Path, engine: EngineSettings, progress: bool, echo: Callable[[str], None]):
    """Step 4: train, export and inspect a custom classifier on the synthetic songs (the
    default head trains and exports without TensorFlow)."""
    from edgebird.training.classifier import train_from_data
    from edgebird.training.model_export import format_inspection, inspect_model
    from edgebird.training.train import TrainSettings

    echo("4/5 training a custom classifier on them (3 grouped folds; the report measures "
         "false positives on noise made in code and on a song held out of training)")
    run = train_from_data(out / "audio", out / "classifier", TrainSettings(
        folds=3, holdout_species=2, synthetic_negatives=32), engine=engine,
        store=out / "store", progress=progress, echo=lambda m: echo("  " + m))
    m = run.result.overall[0]
    echo(f"  cross-validated macro F1 {m['f1@thr']:.3f}, AUPRC {m['auprc']:.3f}; "
         f"report: {run.report}")
    echo(format_inspection(inspect_model(run.files["replace"])))
    return run


def _plot(x: np.ndarray, y: np.ndarray, classes: list[str], dest: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for c in classes:
        pts = xy[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], label=c, s=30)
    ax.set_title("BirdNET embeddings of the demo clips (PCA)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
    return dest
