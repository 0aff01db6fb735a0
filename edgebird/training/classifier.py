"""``edgebird train``, start to finish: data → embeddings → folds → export → report.

Everything a user can get wrong about the data is checked before any embedding or training
starts (``dataset.check``), so a mistake costs seconds, not an hour.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
from edgebird.pipeline import engine as eng
from edgebird.training.background import (
    background_files,
    site_background,
    site_report,
)
from edgebird.training.birdnet_prior import compare, prior_for
from edgebird.training.dataset import (
    TrainingSet,
    check,
    check_folds,
    read_annotations,
    resolve_folds,
    scan_folder,
)
from edgebird.training.features import (
    UNANNOTATED_CHOICES,
    build_features,
    synthetic_negatives,
    window_counts,
    windows_per_class,
)
from edgebird.training.train import TrainResult, TrainSettings, train_classifier

#: ``--model-save-mode``: standalone models with the custom classes only (replace), BirdNET's
#: classes + custom (append), or both files; the first is the default.
SAVE_MODES = ("replace", "append", "both")
#: The file name stem of a trained classifier (BirdNET-Analyzer's).
DEFAULT_MODEL_NAME = "CustomClassifier"


@dataclass
class TrainingRun:
    result: TrainResult
    files: dict[str, Path]
    report: Path
    dataset: TrainingSet


def default_store() -> Path:
    """Embeddings are shared across training runs (keyed by content and settings)."""
    from edgebird.backbones.birdnet.files import cache_dir

    return cache_dir() / "store"


def load_training_set(data: str | os.PathLike, annotations: str | os.PathLike | None = None,
                      group_pattern: str | None = None) -> TrainingSet:
    if annotations:
        return read_annotations(annotations, data, group_pattern)
    return scan_folder(data, group_pattern)


def train_from_data(
    data: str | os.PathLike,
    out: str | os.PathLike,
    settings: TrainSettings = TrainSettings(),
    audio: AudioSettings = AudioSettings(crop_mode=TRAINING_CROP_MODE),
    engine: eng.EngineSettings = eng.EngineSettings(),
    name: str = DEFAULT_MODEL_NAME,
    save_mode: str = SAVE_MODES[0],
    annotations: str | os.PathLike | None = None,
    test_data: str | os.PathLike | None = None,
    group_pattern: str | None = None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    unannotated_negatives: str = UNANNOTATED_CHOICES[0],
) -> TrainingRun:
    from edgebird.backbones.birdnet.model import BirdNET
    from edgebird.core.files import hash_file
    from edgebird.training.model_export import (
        export_classifier,
        publish_model_set,
        staged_model_set,
    )
    from edgebird.training.report import write_report

    t0 = time.perf_counter()
    if save_mode not in SAVE_MODES:
        raise ValueError("save mode must be replace, append or both")
    ts = load_training_set(data, annotations, group_pattern)
    check(ts, settings.folds)
    test_ts = scan_folder(test_data, group_pattern) if test_data else None
    if settings.background:
        background_files(settings.background)  # a missing or empty folder fails now
    echo(ts.describe())
    out = Path(out)
    store = Path(store) if store else default_store()
    model = BirdNET(num_threads=engine.threads, batch_size=engine.batch_size)
    cap = settings.max_windows_per_recording
    feats = build_features(ts, store, audio, model, engine, progress=progress, echo=echo,
                           max_windows=cap, unannotated_negatives=unannotated_negatives)
    dataset_text = ts.describe()
    if feats.annotation_summary():
        dataset_text += f"\n  windows: {feats.annotation_summary()}"
        echo(f"annotations: {feats.annotation_summary()}")
    check_folds(feats.groups_per_class(), settings.folds, after_reading=True)
    windows_text = window_counts(feats, cap)
    echo(windows_text)
    test = None
    if test_ts is not None:
        test = build_features(test_ts, store, audio, model, engine, classes=ts.classes,
                              require_all=False, progress=progress, echo=echo,
                              max_windows=cap)
    negatives = noise_eval = site = None
    if settings.synthetic_negatives:
        negatives = synthetic_negatives(model, ts.classes, settings.synthetic_negatives,
                                        settings.seed, cache=store)
    noise_eval = synthetic_negatives(model, ts.classes, 100, settings.seed + 1000, cache=store)
    if settings.background:
        site = site_background(settings.background, store, audio, model, ts.classes,
                               settings.background_windows, settings.seed, engine,
                               progress=progress, echo=echo)
        echo(site.describe())
        windows_text += "\n" + site.describe()
        negatives = site.train if negatives is None else negatives.concat(site.train)
    n_site = 0 if site is None else len(site.train)
    n_synthetic = 0 if negatives is None else len(negatives) - n_site
    echo(f"training on {len(feats)} windows ({len(np.unique(feats.groups))} recordings) + "
         f"{n_synthetic} synthetic noise windows"
         + (f" + {n_site} site background windows" if site is not None else "") + "; "
         f"{resolve_folds(settings.folds, feats.groups_per_class())[0]} fold(s)")
    prior = prior_for(ts.classes, model)
    result = train_classifier(feats, settings, negatives, noise_eval, test, echo,
                              prior=None if prior is None else prior.full(model.embedding_dim))
    result.windows = windows_per_class(feats)
    if site is not None:
        scores = None if site.held is None else result.final.head.scores(site.held.x)
        result.site_fp = site_report(site, scores, result.thresholds, ts.classes)
        if "any_per_hour" in result.site_fp:
            echo(f"site background: {result.site_fp['any_per_hour']:.1f} false positives "
                 f"per hour at the exported thresholds ({result.site_fp['hours'] * 60:.1f} "
                 "min held out)")
    result.birdnet = compare(result, feats, prior)
    if result.birdnet:
        b, h = result.birdnet["birdnet"], result.birdnet["head"]
        echo(f"BirdNET restricted to the {len(result.birdnet['classes'])} BirdNET class(es): "
             f"macro F1@0.5 {b['f1@0.5']:.3f}, AUPRC {b['auprc']:.3f} (head on the same: "
             f"F1 {h['f1@thr']:.3f}, AUPRC {h['auprc']:.3f})")
    counts = {c: int((feats.y[:, i] > 0.5).sum()) for i, c in enumerate(ts.classes)}
    counts["(background)"] = int((feats.kind == "background").sum())
    if (feats.kind == "unannotated").any():
        counts["(unannotated)"] = int((feats.kind == "unannotated").sum())
    # The whole set is written aside and replaces the earlier one only once complete, so no
    # stale file (an earlier run's _fold5) outlives it and a failure leaves the old set whole.
    with staged_model_set(out) as staging:
        staged = export_classifier(result, staging, name, audio, model.model_path,
                                   model.labels, save_mode, counts)
        sha = {k: hash_file(p, "sha256") for k, p in staged.items()}
        skipped = feats.skipped + (site.skipped if site is not None else [])
        write_report(result, staging, name, staged, dataset_text + "\n" + windows_text,
                     skipped, sha, time.perf_counter() - t0, shown_dir=out)
        published = publish_model_set(staging, out, name)
    if published.earlier:
        echo(published.message(out, name))
    files = {k: out / p.name for k, p in staged.items()}
    return TrainingRun(result, files, out / "REPORT.md", ts)
