"""Train a small dense head on embeddings, per cross-validation fold, honestly.

This is the only module that imports TensorFlow (Keras), lazily, inside ``fit_head``.
Everything else (data handling, augmentation, metrics, the logistic-regression baseline,
inference) is numpy / scikit-learn, so evaluating and exporting need no TensorFlow.

Honesty rules: folds are grouped by recording (clips of one recording never sit on both sides);
early stopping and the per-class thresholds come from an inner grouped k-fold of the training
folds (``inner_fit``), never from the fold being scored; synthetic noise is added to training
only. The final model is trained on all data for the median epoch count of the folds, with
the median of the folds' thresholds.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgebird.options import opt
from edgebird.training.features import Features
from edgebird.training.metrics import best_thresholds, class_metrics, false_positive_rate, sigmoid

UPSAMPLING_MODES = ("repeat", "mean", "linear", "smote")
LOSSES = ("bce", "focal")


@dataclass(frozen=True)
class TrainSettings:
    """Head and training options. Defaults were chosen on real recordings (devbirds, see
    docs/TRAINING.md) and differ from BirdNET-Analyzer's where noted: learning rate 1e-2
    (BNA's 1e-4 leaves a few-dozen-clip set undertrained after 100 epochs: macro F1 0.72 vs
    0.88 on the same folds), up to 100 epochs with early stopping, 64 synthetic noise windows
    as background."""

    hidden_units: int = field(default=0, metadata=opt(
        "--hidden-units", help="units of a hidden ReLU layer; 0: none"))
    dropout: float = field(default=0.0, metadata=opt(
        "--dropout", help="dropout rate before each dense layer"))
    epochs: int = field(default=100, metadata=opt(
        "--epochs", help="training epochs at most (early stopping)"))
    batch_size: int = field(default=32, metadata=opt(
        "--batch-size", help="the head's training mini-batch, in windows (BirdNET-Analyzer's "
                             "--batch_size)"))
    learning_rate: float = field(default=1e-2, metadata=opt(
        "--learning-rate", help="peak learning rate (warm-up, then cosine decay)"))
    loss: str = field(default="bce", metadata=opt(
        "--focal-loss", const="focal", help="focal loss instead of BCE"))
    focal_gamma: float = field(default=2.0, metadata=opt(
        "--focal-loss-gamma", help="focal loss: focusing parameter gamma"))
    focal_alpha: float = field(default=0.25, metadata=opt(
        "--focal-loss-alpha", help="focal loss: weight alpha of the positives"))
    label_smoothing: float = field(default=0.0, metadata=opt(
        "--label-smoothing", nargs="?", const=0.1, help="label smoothing (flag alone: 0.1)"))
    mixup: bool = field(default=False, metadata=opt(
        "--mixup", help="mixup augmentation: blend pairs of training windows and labels"))
    upsampling_mode: str = field(default="repeat", metadata=opt(
        "--upsampling-mode", choices=UPSAMPLING_MODES,
        help="how small classes are grown (with --upsampling-ratio)"))
    upsampling_ratio: float = field(default=0.0, metadata=opt(
        "--upsampling-ratio", help="grow small classes to this fraction of the largest; "
                                   "0: off"))
    patience: int = 10
    folds: int = field(default=5, metadata=opt(
        "--folds", help="cross-validation folds, grouped by recording; 1: one validation "
                        "split"))
    val_fraction: float = 0.2
    synthetic_negatives: int = field(default=64, metadata=opt(
        "--synthetic-negatives", help="noise windows made in code (rain, wind, engines...) "
                                      "added as background; 0: off"))
    holdout_species: int = field(default=10, metadata=opt(
        "--holdout-species", help="measure false positives on up to N classes held out in "
                                  "turn; 0: skip"))
    seed: int = field(default=0, metadata=opt("--seed", help="random seed"))

    def __post_init__(self) -> None:
        checks = [
            (self.hidden_units >= 0, "hidden units must be >= 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch size must be >= 1"),
            (self.learning_rate > 0, "learning rate must be > 0"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (0.0 <= self.label_smoothing < 0.5, "label smoothing must be in [0, 0.5)"),
            (self.upsampling_mode in UPSAMPLING_MODES,
             f"upsampling mode must be one of {', '.join(UPSAMPLING_MODES)}"),
            (0.0 <= self.upsampling_ratio <= 1.0, "upsampling ratio must be in [0, 1]"),
            (self.folds >= 1, "folds must be >= 1"),
            (0.05 <= self.val_fraction <= 0.5, "validation fraction must be in [0.05, 0.5]"),
            (self.synthetic_negatives >= 0, "synthetic negatives must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)


@dataclass
class HeadFit:
    layers: list  # [(weights [in, out], bias [out], relu)]
    history: dict
    best_epoch: int
    keras_model: object = None


@dataclass
class FoldResult:
    fold: int
    layers: list
    thresholds: np.ndarray
    metrics: list[dict]
    baseline: list[dict]
    history: dict
    best_epoch: int
    sizes: dict
    test_y: np.ndarray
    test_p: np.ndarray
    test_kind: np.ndarray


@dataclass
class TrainResult:
    classes: list[str]
    settings: TrainSettings
    folds: list[FoldResult]
    final: HeadFit
    thresholds: np.ndarray
    overall: list[dict]
    baseline_overall: list[dict]
    noise_fp: dict
    holdout: list[dict]
    test_metrics: list[dict] | None = None
    notes: list[str] = field(default_factory=list)


# -- inference (numpy) --------------------------------------------------------------------------
def head_logits(layers: list, x: np.ndarray) -> np.ndarray:
    """The head's forward pass: what the exported .tflite computes."""
    h = np.asarray(x, dtype=np.float32)
    for w, b, relu in layers:
        h = h @ w + b
        if relu:
            h = np.maximum(h, 0.0)
    return h


# -- augmentation (numpy) -----------------------------------------------------------------------
def upsample(x: np.ndarray, y: np.ndarray, ratio: float, mode: str,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Add synthetic rows until every class has ``ratio`` x the largest class's count.

    repeat: copies; mean: mean of two same-class rows; linear: a random convex combination
    of two; smote: interpolate toward one of the 5 nearest same-class neighbours. Only rows
    with a single label are used as sources.
    """
    if ratio <= 0:
        return x, y
    single = (y > 0.5).sum(axis=1) == 1
    counts = (y > 0.5).sum(axis=0)
    target = int(np.ceil(ratio * counts.max()))
    new_x, new_y = [], []
    for c in range(y.shape[1]):
        src = np.flatnonzero(single & (y[:, c] > 0.5))
        need = target - counts[c]
        if need <= 0 or len(src) == 0:
            continue
        a = rng.choice(src, need)
        if mode == "repeat" or len(src) == 1:
            rows = x[a]
        elif mode == "mean":
            rows = (x[a] + x[rng.choice(src, need)]) / 2
        elif mode == "linear":
            lam = rng.uniform(0, 1, (need, 1))
            rows = lam * x[a] + (1 - lam) * x[rng.choice(src, need)]
        else:  # smote
            pts = x[src]
            d = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1)
            np.fill_diagonal(d, np.inf)
            k = min(5, len(src) - 1)
            nn = np.argsort(d, axis=1)[:, :k]
            pos = {s: i for i, s in enumerate(src)}
            partner = src[nn[[pos[i] for i in a], rng.integers(0, k, need)]]
            lam = rng.uniform(0, 1, (need, 1))
            rows = x[a] + lam * (x[partner] - x[a])
        new_x.append(rows.astype(np.float32))
        new_y.append(np.repeat(y[c:c + 1] * 0 + np.eye(y.shape[1])[c], need, axis=0))
    if not new_x:
        return x, y
    return np.concatenate([x, *new_x]), np.concatenate([y, *new_y]).astype(np.float32)


def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, fraction: float = 0.25,
          alpha: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Add mixed rows: ``fraction`` of the positive rows, each blended with a random row
    (λ ~ Beta(alpha, alpha)); the targets blend the same way."""
    pos = np.flatnonzero((y > 0.5).any(axis=1))
    n = int(len(pos) * fraction)
    if n == 0:
        return x, y
    a, b = rng.choice(pos, n), rng.integers(0, len(x), n)
    lam = rng.beta(alpha, alpha, (n, 1)).astype(np.float32)
    return (np.concatenate([x, lam * x[a] + (1 - lam) * x[b]]),
            np.concatenate([y, lam * y[a] + (1 - lam) * y[b]]))


# -- the Keras head ---------------------------------------------------------------------------
def _keras():
    from edgebird.core.quiet import quiet_native_stderr

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():  # absl's start-up banner bypasses TF_CPP_MIN_LOG_LEVEL
            import keras
            import tensorflow as tf  # noqa: F401 - keras' backend
    except ImportError:
        raise ImportError(
            "training needs TensorFlow: pip install 'edgebird[train]'") from None
    return keras


def fit_head(x_tr: np.ndarray, y_tr: np.ndarray, s: TrainSettings,
             x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
             epochs: int | None = None, keep_model: bool = False) -> HeadFit:
    """Train the head. With validation data: early stopping on validation loss, restoring
    the best weights. Without: exactly ``epochs`` epochs."""
    keras = _keras()
    keras.utils.set_random_seed(s.seed)
    rng = np.random.default_rng(s.seed)
    x_tr, y_tr = upsample(x_tr, y_tr, s.upsampling_ratio, s.upsampling_mode, rng)
    if s.mixup:
        x_tr, y_tr = mixup(x_tr, y_tr, rng)
    n_in, n_out = x_tr.shape[1], y_tr.shape[1]
    reg = keras.regularizers.L2(1e-5)
    layers = [keras.Input((n_in,))]
    if s.hidden_units:
        if s.dropout:
            layers.append(keras.layers.Dropout(s.dropout, seed=s.seed))
        layers.append(keras.layers.Dense(s.hidden_units, activation="relu",
                                         kernel_initializer="he_normal", kernel_regularizer=reg))
    if s.dropout:
        layers.append(keras.layers.Dropout(s.dropout, seed=s.seed + 1))
    layers.append(keras.layers.Dense(n_out, kernel_regularizer=reg))
    model = keras.Sequential(layers)
    epochs = epochs or s.epochs
    # The schedule always spans s.epochs: a refit for the epoch count that early stopping
    # found replays the learning rates of the fits that found it, then stops there.
    per_epoch = int(np.ceil(len(x_tr) / s.batch_size))
    steps = per_epoch * s.epochs
    warmup = min(5, max(1, s.epochs // 10)) * per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        s.learning_rate * 0.1, decay_steps=max(1, steps - warmup), alpha=0.1,
        warmup_target=s.learning_rate, warmup_steps=warmup)
    if s.loss == "focal":
        loss = keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=s.focal_alpha, gamma=s.focal_gamma,
            from_logits=True, label_smoothing=s.label_smoothing)
    else:
        loss = keras.losses.BinaryCrossentropy(from_logits=True,
                                               label_smoothing=s.label_smoothing)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    callbacks = []
    validation = None
    if x_val is not None and len(x_val):
        validation = (x_val, y_val)
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=s.patience, min_delta=1e-4,
            restore_best_weights=True))
    hist = model.fit(x_tr, y_tr, batch_size=s.batch_size, epochs=epochs, verbose=0,
                     shuffle=True, validation_data=validation, callbacks=callbacks)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    best = int(np.argmin(history["val_loss"])) + 1 if "val_loss" in history else epochs
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    out = [(lay.get_weights()[0].astype(np.float32), lay.get_weights()[1].astype(np.float32),
            lay.activation is keras.activations.relu) for lay in dense]
    return HeadFit(out, history, best, model if keep_model else None)


# -- splits ---------------------------------------------------------------------------------
def grouped_splits(strata: np.ndarray, groups: np.ndarray, k: int,
                   seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K grouped, stratified folds (stratum = label combination); k=1: one split with
    about 20 % of the groups held out."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(k, 2) if k > 1 else 5
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has only N members"
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(strata)), strata, groups))
    return splits if k > 1 else splits[:1]


def inner_fit(train: Features, s: TrainSettings, negatives: Features | None,
              echo: Callable[[str], None] | None = None) -> tuple[HeadFit, np.ndarray]:
    """Train on ``train`` with thresholds and an epoch count that never look at held-out
    data: an inner grouped k-fold (early stopping on each inner validation part) gives
    out-of-fold scores for every training window, on which per-class F1-optimal thresholds
    are chosen; the model is then trained on all of ``train`` for the inner folds' median
    best epoch count. Small sets get more out of this than from one small validation split.
    """
    strata = train.strata()
    most = max(len(np.unique(train.groups[strata == v])) for v in np.unique(strata))
    k = min(max(2, int(round(1 / s.val_fraction))), most)  # small sets: fewer inner folds
    if k < 2:
        fit = fit_head(*_with(train, negatives), s, epochs=s.epochs)
        return fit, np.full(len(train.classes), 0.5)
    oof = np.zeros(train.y.shape, dtype=np.float64)
    epochs = []
    for tr, va in grouped_splits(strata, train.groups, k, s.seed + 17):
        part, val = train.subset(tr), train.subset(va)
        fit = fit_head(*_with(part, negatives), s, val.x, val.y)
        oof[va] = sigmoid(head_logits(fit.layers, val.x))
        epochs.append(fit.best_epoch)
    thresholds = best_thresholds(train.y, oof)
    fit = fit_head(*_with(train, negatives), s, epochs=int(np.median(epochs)))
    fit.best_epoch = int(np.median(epochs))
    return fit, thresholds


def _with(f: Features, negatives: Features | None) -> tuple[np.ndarray, np.ndarray]:
    if negatives is None or not len(negatives):
        return f.x, f.y
    return np.concatenate([f.x, negatives.x]), np.concatenate([f.y, negatives.y])


# -- the baseline -------------------------------------------------------------------------------
def logistic_baseline(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
    """One-vs-rest logistic regression on standardised embeddings: is the head worth it?"""
    from edgebird.heads import LogisticHead

    return LogisticHead(balanced=False).fit(x_tr, y_tr).scores(x_te)


# -- the whole procedure ------------------------------------------------------------------------
def _mean_rows(tables: list[list[dict]]) -> list[dict]:
    out = []
    for rows in zip(*tables, strict=True):
        row = {"class": rows[0]["class"]}
        for key in rows[0]:
            if key == "class":
                continue
            vals = np.array([r[key] for r in rows], dtype=float)
            if key in ("tp", "fp", "tn", "fn", "positives", "windows"):
                row[key] = int(np.nansum(vals))
            else:
                row[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
                row[key + "_std"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else 0.0
        out.append(row)
    return out


def train_classifier(feats: Features, s: TrainSettings, negatives: Features | None = None,
                     noise_eval: Features | None = None, test: Features | None = None,
                     echo: Callable[[str], None] = print) -> TrainResult:
    """Cross-validate, then train the final head on everything.

    ``negatives``: synthetic background rows added to every training split (never scored);
    ``noise_eval``: other synthetic rows on which false positives are measured; ``test``: an
    optional separate test set scored by the final model.
    """
    classes = feats.classes
    folds: list[FoldResult] = []
    splits = grouped_splits(feats.strata(), feats.groups, s.folds, s.seed)
    for i, (tr_idx, te_idx) in enumerate(splits, start=1):
        train, held = feats.subset(tr_idx), feats.subset(te_idx)
        fit, thresholds = inner_fit(train, s, negatives)
        p_te = sigmoid(head_logits(fit.layers, held.x))
        p_base = logistic_baseline(*_with(train, negatives), held.x)
        folds.append(FoldResult(
            i, fit.layers, thresholds, class_metrics(held.y, p_te, classes, thresholds),
            class_metrics(held.y, p_base, classes, np.full(len(classes), 0.5)),
            fit.history, fit.best_epoch,
            {"train": len(train), "test": len(held)}, held.y, p_te, held.kind))
        m = folds[-1].metrics[0]
        echo(f"fold {i}/{len(splits)}: macro F1 {m['f1@thr']:.3f} at the chosen thresholds "
             f"({m['f1@0.5']:.3f} at 0.5), AUPRC {m['auprc']:.3f}; logistic baseline F1@0.5 "
             f"{folds[-1].baseline[0]['f1@0.5']:.3f}; epochs {fit.best_epoch}")
    epochs = int(np.median([f.best_epoch for f in folds]))
    thresholds = np.median(np.stack([f.thresholds for f in folds]), axis=0)
    everything = feats if negatives is None else feats.concat(negatives)
    final = fit_head(everything.x, everything.y, s, epochs=epochs, keep_model=True)
    noise_fp = {}
    if noise_eval is not None and len(noise_eval):
        p = sigmoid(head_logits(final.layers, noise_eval.x))
        noise_fp = {"windows": len(noise_eval),
                    "fp_rate@thr": false_positive_rate(p, thresholds),
                    "fp_rate@0.5": false_positive_rate(p, np.full(len(classes), 0.5)),
                    "max_score": float(p.max())}
    result = TrainResult(
        classes, s, folds, final, thresholds, _mean_rows([f.metrics for f in folds]),
        _mean_rows([f.baseline for f in folds]), noise_fp,
        holdout_species_fp(everything, s, epochs, thresholds, echo))
    if test is not None and len(test):
        p = sigmoid(head_logits(final.layers, test.x))
        result.test_metrics = class_metrics(test.y, p, classes, thresholds)
    return result


def holdout_species_fp(feats: Features, s: TrainSettings, epochs: int,
                       thresholds: np.ndarray, echo: Callable[[str], None]) -> list[dict]:
    """Open-set false positives: for each of up to ``s.holdout_species`` classes, train on
    the others (without it) and count how often its windows fire any remaining class."""
    n = len(feats.classes)
    if n < 3 or s.holdout_species <= 0:
        return []
    out = []
    for c in range(min(n, s.holdout_species)):
        held = (feats.y[:, c] > 0.5)
        keep_cols = [j for j in range(n) if j != c]
        rest = feats.subset(np.flatnonzero(~held))
        fit = fit_head(rest.x, rest.y[:, keep_cols], s, epochs=epochs)
        p = sigmoid(head_logits(fit.layers, feats.x[held]))
        out.append({"held_out": feats.classes[c], "windows": int(held.sum()),
                    "fp_rate@thr": false_positive_rate(p, thresholds[keep_cols]),
                    "fp_rate@0.5": false_positive_rate(p, np.full(n - 1, 0.5))})
    mean = float(np.mean([r["fp_rate@thr"] for r in out]))
    echo(f"held-out species: a class the model never saw fires some class on "
         f"{mean:.1%} of its windows (mean over {len(out)} classes)")
    return out
