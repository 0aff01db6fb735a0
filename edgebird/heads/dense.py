"""``edgebird train``'s Keras head and its augmentation: the only module that imports TensorFlow.

TensorFlow (Keras) is imported lazily inside ``fit``; scoring and export use the numpy
forward pass of the fitted layers (``head_logits``), so they need no TensorFlow.

The head is a linear layer (optionally after a hidden ReLU layer) trained with binary
cross-entropy (or focal loss) on logits, Adam on a cosine schedule with warm-up, L2 1e-5.
Without validation data it trains ``epochs`` epochs; with ``fit(..., validation=...)`` it
stops early on the validation loss (``patience``) and restores the best weights; with
``fit_epochs`` set it trains exactly that many epochs of the ``epochs``-long schedule (the
refit for the epoch count early stopping found). Training rows may be upsampled
(``upsampling_mode``, ``upsampling_ratio``) and, for ``dense-mixup``, mixed up; the
defaults are ``TrainSettings``' (docs/TRAINING.md says why).
"""

from __future__ import annotations

import os

import numpy as np

from edgebird.heads.base import Head, head_logits, register, sigmoid

UPSAMPLING_MODES = ("repeat", "mean", "linear", "smote")
LOSSES = ("bce", "focal")


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


# -- Keras --------------------------------------------------------------------------------------
def keras_module():
    """Keras with TensorFlow as its backend, quietly; a clear error without TensorFlow."""
    from edgebird.core.quiet import quiet_native_stderr

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with quiet_native_stderr():  # absl's start-up banner bypasses TF_CPP_MIN_LOG_LEVEL
            import keras
            import tensorflow as tf  # noqa: F401 - keras' backend
    except ImportError:
        raise ImportError(
            "the dense head needs TensorFlow: pip install 'edgebird[train]' (the default "
            "head, anchored, does not)") from None
    return keras


@register
class DenseHead(Head):
    """``edgebird train``'s Keras head. Fitted: ``weights_`` (the dense layers), ``history_``
    (Keras' per-epoch losses), ``best_epoch_``, and with ``keep_model`` ``model_`` (the Keras
    model, for checking the numpy forward pass against it)."""

    name = "dense"
    description = "edgebird train's dense head (Keras; needs TensorFlow)"
    exportable = True
    tunes_epochs = True
    weighs_rows = False
    #: Blend training rows (``mixup``) before fitting.
    mixup = False

    def __init__(self, hidden_units: int = 0, dropout: float = 0.0, epochs: int = 100,
                 batch_size: int = 32, learning_rate: float = 1e-2, loss: str = "bce",
                 focal_gamma: float = 2.0, focal_alpha: float = 0.25,
                 label_smoothing: float = 0.0, upsampling_mode: str = "repeat",
                 upsampling_ratio: float = 0.0, patience: int = 10, seed: int = 0,
                 fit_epochs: int | None = None, keep_model: bool = False):
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.loss = loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.label_smoothing = label_smoothing
        self.upsampling_mode = upsampling_mode
        self.upsampling_ratio = upsampling_ratio
        self.patience = patience
        self.seed = seed
        self.fit_epochs = fit_epochs
        self.keep_model = keep_model

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}")
        if self.upsampling_mode not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling mode must be one of {', '.join(UPSAMPLING_MODES)}")

    def fit(self, x, y, sample_weight=None, validation=None) -> DenseHead:
        """Train; ``validation=(x_val, y_val)``: early stopping on its loss, restoring the best
        weights. Without: ``fit_epochs`` (or else ``epochs``) epochs."""
        self._check_weights(sample_weight)
        self._check_params()
        x_tr, y_tr = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.float32)
        keras = keras_module()
        keras.utils.set_random_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        x_tr, y_tr = upsample(x_tr, y_tr, self.upsampling_ratio, self.upsampling_mode, rng)
        if self.mixup:
            x_tr, y_tr = mixup(x_tr, y_tr, rng)
        model = self._model(keras, x_tr.shape[1], y_tr.shape[1], len(x_tr))
        epochs = self.fit_epochs or self.epochs
        callbacks = []
        if validation is not None and len(validation[0]):
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, min_delta=1e-4,
                restore_best_weights=True))
        else:
            validation = None
        hist = model.fit(x_tr, y_tr, batch_size=self.batch_size, epochs=epochs, verbose=0,
                         shuffle=True, validation_data=validation, callbacks=callbacks)
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.best_epoch_ = int(np.argmin(self.history_["val_loss"])) + 1 \
            if "val_loss" in self.history_ else epochs
        dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        self.weights_ = [(lay.get_weights()[0].astype(np.float32),
                          lay.get_weights()[1].astype(np.float32),
                          lay.activation is keras.activations.relu) for lay in dense]
        if self.keep_model:
            self.model_ = model
        return self

    def _model(self, keras, n_in: int, n_out: int, n_rows: int):
        """The compiled Keras model: layers, cosine schedule, loss."""
        reg = keras.regularizers.L2(1e-5)
        layers = [keras.Input((n_in,))]
        if self.hidden_units:
            if self.dropout:
                layers.append(keras.layers.Dropout(self.dropout, seed=self.seed))
            layers.append(keras.layers.Dense(self.hidden_units, activation="relu",
                                             kernel_initializer="he_normal",
                                             kernel_regularizer=reg))
        if self.dropout:
            layers.append(keras.layers.Dropout(self.dropout, seed=self.seed + 1))
        layers.append(keras.layers.Dense(n_out, kernel_regularizer=reg))
        model = keras.Sequential(layers)
        # The schedule always spans self.epochs: a refit for the epoch count that early
        # stopping found replays the learning rates of the fits that found it, then stops.
        per_epoch = int(np.ceil(n_rows / self.batch_size))
        steps = per_epoch * self.epochs
        warmup = min(5, max(1, self.epochs // 10)) * per_epoch
        schedule = keras.optimizers.schedules.CosineDecay(
            self.learning_rate * 0.1, decay_steps=max(1, steps - warmup), alpha=0.1,
            warmup_target=self.learning_rate, warmup_steps=warmup)
        if self.loss == "focal":
            loss = keras.losses.BinaryFocalCrossentropy(
                apply_class_balancing=True, alpha=self.focal_alpha, gamma=self.focal_gamma,
                from_logits=True, label_smoothing=self.label_smoothing)
        else:
            loss = keras.losses.BinaryCrossentropy(from_logits=True,
                                                   label_smoothing=self.label_smoothing)
        model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
        return model

    def scores(self, x) -> np.ndarray:
        return sigmoid(head_logits(self.layers_(), x))

    def layers_(self):
        self._check_fitted()
        return list(self.weights_)


@register
class MixupDenseHead(DenseHead):
    """The dense head with mixup: a quarter of the positive rows are blended with random
    rows (and their targets alike) before each fit."""

    name = "dense-mixup"
    description = "the dense head with mixup"
    mixup = True
