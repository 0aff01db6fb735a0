"""Classifier heads on fixed features, behind one small interface, for comparing them fairly.

Every head follows scikit-learn's convention (explicit parameters, ``fit`` then predict) and
gives **per-class scores in [0, 1] whose decision point is 0.5**, so one set of metrics
(F1, sensitivity and specificity at 0.5; AUPRC and AUROC, which need no threshold) treats them
alike. Targets are multi-label 0/1 ``[n, classes]``; rows of all zeros are background (noise,
other species) and teach every head what is *not* a class, which is how false positives are
kept down.

- ``logreg``: one-vs-rest logistic regression on standardised features (``edgebird train``'s
  baseline). Scores are its probabilities.
- ``svm-linear`` / ``svm-rbf``: one-vs-rest support vector machines on standardised features.
  Scores are ``sigmoid(decision_function)``: 0.5 is the SVM's own margin, the ranking is its
  decision value (no Platt scaling: its internal 5-fold CV is meaningless at 1-5 shots).
- ``dense`` / ``dense-mixup``: the Keras head ``edgebird train`` exports (``train.fit_head``),
  trained for a fixed number of epochs (at a few shots there is no validation data to stop
  early on). Needs TensorFlow.
- ``knn``: the share of the k nearest training rows (cosine distance) that carry the class;
  0.5 is a majority of neighbours. Background rows are neighbours without a label. k is
  capped at the smallest class's count, so at 1 shot it is the nearest neighbour (with k
  above the shots a class could never reach a majority).
- ``prototype``: nearest class mean (prototypical networks' rule): features centred and
  L2-normalised, one prototype per class and one for background, scores a softmax of cosine
  similarities over the prototypes with temperature ``temperature``.

One-vs-rest at a few shots is badly unbalanced (k positives against every other class's
windows and the noise), so the logistic and SVM heads weigh each side equally by default
(``balanced``, scikit-learn's remedy): measured on devbirds without it, the RBF SVM ranked
well (AUPRC 0.95-0.99) but never reached 0.5 (macro F1 0.00-0.11 at 1-4 shots).
``edgebird train``'s logistic baseline keeps the unweighted fit. ``pos_weight`` multiplies
the positives' weight on top: above 1 trades specificity for sensitivity, below 1 the
reverse. ``sample_weight`` lets pseudo-labelled rows count less than labelled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from edgebird.training.metrics import sigmoid


@runtime_checkable
class Head(Protocol):
    name: str

    def fit(self, x: np.ndarray, y: np.ndarray,
            sample_weight: np.ndarray | None = None) -> Head: ...

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``[n, classes]`` in [0, 1]; a class is detected at >= 0.5."""
        ...


def _standardise(x_tr: np.ndarray):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(np.asarray(x_tr, dtype=np.float64))


def _per_class(y: np.ndarray, fit_one: Callable[[np.ndarray], object]) -> list:
    """One fitted binary model per class, or the constant 0/1 where a class is all one value
    (e.g. a class with no example in this draw)."""
    models = []
    for c in range(y.shape[1]):
        yc = y[:, c] > 0.5
        models.append(float(yc.all()) if yc.all() or not yc.any() else fit_one(yc))
    return models


def _class_weight(yc: np.ndarray, pos_weight: float, balanced: bool) -> dict | None:
    """Loss weights of positives and negatives: with ``balanced`` each side weighs as much
    in total (scikit-learn's "balanced"), times ``pos_weight`` for the positives."""
    if not balanced:
        return None if pos_weight == 1.0 else {True: float(pos_weight), False: 1.0}
    n, n_pos = len(yc), int(yc.sum())
    return {True: pos_weight * n / (2 * n_pos), False: n / (2 * (n - n_pos))}


@dataclass
class _OneVsRest:
    """One binary scikit-learn model per class on standardised features; subclasses say which
    model (``_estimator``) and how it scores (``_score``)."""

    pos_weight: float = 1.0
    balanced: bool = True
    _scaler: object = field(default=None, repr=False)
    _models: list = field(default_factory=list, repr=False)

    def _estimator(self, class_weight: dict | None):
        raise NotImplementedError

    def _score(self, model, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, x, y, sample_weight=None):
        self._scaler = _standardise(x)
        a = self._scaler.transform(x)
        self._models = _per_class(y, lambda yc: self._estimator(
            _class_weight(yc, self.pos_weight, self.balanced)).fit(
                a, yc, sample_weight=sample_weight))
        return self

    def scores(self, x) -> np.ndarray:
        a = self._scaler.transform(x)
        return np.stack([np.full(len(a), m) if isinstance(m, float) else self._score(m, a)
                         for m in self._models], axis=1)


@dataclass
class LogisticHead(_OneVsRest):
    """One-vs-rest logistic regression (L2, ``C``); scores are its probabilities."""

    C: float = 0.1
    name: str = "logreg"

    def _estimator(self, class_weight):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=2000, class_weight=class_weight)

    def _score(self, model, a):
        return model.predict_proba(a)[:, 1]


@dataclass
class SVMHead(_OneVsRest):
    """One-vs-rest SVM (``kernel`` linear or rbf, ``C``); scores are
    ``sigmoid(decision_function)``."""

    kernel: str = "linear"
    C: float = 1.0
    name: str = "svm-linear"

    def __post_init__(self) -> None:
        if self.kernel not in ("linear", "rbf"):
            raise ValueError("SVM kernel must be linear or rbf")

    def _estimator(self, class_weight):
        from sklearn.svm import SVC

        return SVC(kernel=self.kernel, C=self.C, gamma="scale", class_weight=class_weight)

    def _score(self, model, a):
        return sigmoid(model.decision_function(a))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _no_weights(head: str, sample_weight: np.ndarray | None) -> None:
    if sample_weight is not None and not np.allclose(sample_weight, 1.0):
        raise ValueError(f"the {head} head cannot weigh rows; use logreg or an SVM head for "
                         "weighted (pseudo-labelled) rows")


@dataclass
class KNNHead:
    """Share of the ``k`` nearest training rows (cosine distance) carrying each class."""

    k: int = 5
    name: str = "knn"
    _k: int = field(default=5, repr=False)
    _x: np.ndarray | None = field(default=None, repr=False)
    _y: np.ndarray | None = field(default=None, repr=False)

    def fit(self, x, y, sample_weight=None) -> KNNHead:
        _no_weights(self.name, sample_weight)
        self._x, self._y = _unit(np.asarray(x, dtype=np.float64)), (y > 0.5).astype(np.float64)
        counts = self._y.sum(axis=0)
        self._k = int(max(1, min(self.k, counts[counts > 0].min(initial=self.k), len(self._x))))
        return self

    def scores(self, x) -> np.ndarray:
        k = self._k
        sim = _unit(np.asarray(x, dtype=np.float64)) @ self._x.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        return self._y[nearest].mean(axis=1)


@dataclass
class PrototypeHead:
    """Nearest class mean: cosine similarity to per-class (and background) prototypes."""

    temperature: float = 0.1
    name: str = "prototype"
    _mean: np.ndarray | None = field(default=None, repr=False)
    _protos: np.ndarray | None = field(default=None, repr=False)
    _n_classes: int = 0

    def fit(self, x, y, sample_weight=None) -> PrototypeHead:
        _no_weights(self.name, sample_weight)
        x = np.asarray(x, dtype=np.float64)
        self._mean = x.mean(axis=0)
        u = _unit(x - self._mean)
        pos = y > 0.5
        self._n_classes = y.shape[1]
        protos = [u[pos[:, c]].mean(axis=0) if pos[:, c].any() else np.zeros(u.shape[1])
                  for c in range(y.shape[1])]
        background = ~pos.any(axis=1)
        if background.any():
            protos.append(u[background].mean(axis=0))
        self._protos = _unit(np.stack(protos))
        return self

    def scores(self, x) -> np.ndarray:
        sim = _unit(np.asarray(x, dtype=np.float64) - self._mean) @ self._protos.T
        z = sim / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p[:, :self._n_classes]


@dataclass
class DenseHead:
    """``edgebird train``'s Keras head (``train.fit_head``), a fixed number of epochs."""

    settings: object = None  # train.TrainSettings; None: its defaults
    mixup: bool = False
    name: str = "dense"
    _layers: list = field(default_factory=list, repr=False)

    def fit(self, x, y, sample_weight=None) -> DenseHead:
        from dataclasses import replace

        from edgebird.training.train import TrainSettings, fit_head

        _no_weights(self.name, sample_weight)
        s = replace(self.settings or TrainSettings(), mixup=self.mixup)
        self._layers = fit_head(np.asarray(x, dtype=np.float32), np.asarray(y, np.float32), s,
                                epochs=s.epochs).layers
        return self

    def scores(self, x) -> np.ndarray:
        from edgebird.training.train import head_logits

        return sigmoid(head_logits(self._layers, x))


#: Head names for the command line, and what each is.
HEADS = {
    "logreg": "logistic regression (one-vs-rest, standardised features)",
    "svm-linear": "linear SVM (one-vs-rest, standardised features)",
    "svm-rbf": "RBF-kernel SVM (one-vs-rest, standardised features)",
    "dense": "edgebird train's dense head (Keras; needs TensorFlow)",
    "dense-mixup": "the dense head with mixup",
    "knn": "k nearest neighbours (k=5, cosine)",
    "prototype": "nearest class mean (cosine, with a background prototype)",
}
#: Heads that need TensorFlow.
KERAS_HEADS = ("dense", "dense-mixup")


def make_head(name: str, seed: int = 0, pos_weight: float = 1.0,
              train_settings: object = None) -> Head:
    """A fresh, unfitted head by name (one of ``HEADS``)."""
    if pos_weight != 1.0 and name not in ("logreg", "svm-linear", "svm-rbf"):
        raise ValueError(f"a positive-class weight needs logreg or an SVM head, not {name}")
    if name == "logreg":
        return LogisticHead(pos_weight=pos_weight)
    if name in ("svm-linear", "svm-rbf"):
        return SVMHead(kernel=name.split("-")[1], pos_weight=pos_weight, name=name)
    if name in KERAS_HEADS:
        from dataclasses import replace

        from edgebird.training.train import TrainSettings

        s = replace(train_settings or TrainSettings(), seed=seed)
        return DenseHead(s, mixup=name == "dense-mixup", name=name)
    if name == "knn":
        return KNNHead()
    if name == "prototype":
        return PrototypeHead()
    raise ValueError(f"unknown head {name!r}; available: {', '.join(HEADS)}")
