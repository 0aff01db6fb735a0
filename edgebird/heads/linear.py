"""scikit-learn heads on standardised features: logistic regression and support vector machines.

One binary model per class (one-vs-rest). At a few shots one-vs-rest is badly unbalanced
(k positives against every other class's windows and the noise), so by default each side
weighs as much in total (``balanced``, scikit-learn's remedy): measured on devbirds without
it, the RBF SVM ranked well (AUPRC 0.95-0.99) but never reached 0.5 (macro F1 0.00-0.11 at
1-4 shots). ``edgebird train``'s logistic baseline keeps the unweighted fit. ``pos_weight``
multiplies the positives' weight on top: above 1 trades specificity for sensitivity, below 1
the reverse. ``sample_weight`` lets pseudo-labelled rows count less than labelled ones.

The logistic and the linear SVM heads are linear in the features, so they export as one dense
layer with the scaler folded into W and b (``layers_``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgebird.heads.base import Head, register, sigmoid

#: The logit standing for a class that was constant in training (all or none): its score
#: is 0 or 1, and sigmoid(±30) is that to 1e-13.
CONSTANT_LOGIT = 30.0


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


class _OneVsRest(Head):
    """One binary scikit-learn model per class on standardised features; subclasses say which
    model (``_estimator``) and how it scores (``_score``). Fitted: ``scaler_``, ``models_``
    (per class a model, or the constant score of a class constant in training)."""

    def __init__(self, C: float = 1.0, pos_weight: float = 1.0, balanced: bool = True):
        self.C = C
        self.pos_weight = pos_weight
        self.balanced = balanced

    def _estimator(self, class_weight: dict | None):
        raise NotImplementedError

    def _score(self, model, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, x, y, sample_weight=None) -> _OneVsRest:
        from sklearn.preprocessing import StandardScaler

        self.scaler_ = StandardScaler().fit(np.asarray(x, dtype=np.float64))
        a = self.scaler_.transform(x)
        self.models_ = _per_class(y, lambda yc: self._estimator(
            _class_weight(yc, self.pos_weight, self.balanced)).fit(
                a, yc, sample_weight=sample_weight))
        return self

    def scores(self, x) -> np.ndarray:
        self._check_fitted()
        a = self.scaler_.transform(x)
        return np.stack([np.full(len(a), m) if isinstance(m, float) else self._score(m, a)
                         for m in self.models_], axis=1)

    def _linear_layers(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """One dense layer: each class's ``coef_ . (x - mean) / scale + intercept_`` with the
        scaler folded in (computed in float64, stored as float32)."""
        self._check_fitted()
        mean, scale = self.scaler_.mean_, self.scaler_.scale_
        w = np.zeros((len(mean), len(self.models_)))
        b = np.zeros(len(self.models_))
        for c, m in enumerate(self.models_):
            if isinstance(m, float):
                b[c] = CONSTANT_LOGIT if m > 0.5 else -CONSTANT_LOGIT
                continue
            coef = np.asarray(m.coef_, dtype=np.float64).ravel() / scale
            w[:, c] = coef
            b[c] = float(np.ravel(m.intercept_)[0]) - float(coef @ mean)
        return [(w.astype(np.float32), b.astype(np.float32), False)]


@register
class LogisticHead(_OneVsRest):
    """One-vs-rest logistic regression (L2, ``C``); scores are its probabilities, i.e.
    ``sigmoid(decision_function)``, so its layers are the decision function itself."""

    name = "logreg"
    description = "logistic regression (one-vs-rest, standardised features)"
    exportable = True

    def __init__(self, C: float = 0.1, pos_weight: float = 1.0, balanced: bool = True):
        super().__init__(C, pos_weight, balanced)

    def _estimator(self, class_weight):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=2000, class_weight=class_weight)

    def _score(self, model, a):
        return model.predict_proba(a)[:, 1]

    def layers_(self):
        return self._linear_layers()


class _SVMHead(_OneVsRest):
    """One-vs-rest SVM (kernel ``kernel``, ``C``). Scores are ``sigmoid(decision_function)``:
    0.5 is the SVM's own margin and the ranking is its decision value (no Platt scaling: its
    internal 5-fold CV is meaningless at 1-5 shots). The sigmoid is only a squashing of the
    signed distance into [0, 1], not a calibrated probability."""

    kernel = "linear"

    def _estimator(self, class_weight):
        from sklearn.svm import SVC

        return SVC(kernel=self.kernel, C=self.C, gamma="scale", class_weight=class_weight)

    def _score(self, model, a):
        return sigmoid(model.decision_function(a))


@register
class LinearSVMHead(_SVMHead):
    __doc__ = _SVMHead.__doc__ + """

    Exportable: the layer's logits are the decision values (signed margins), so an exported
    model's ``sigmoid(logit)`` is this head's score and its 0.5 is the margin."""

    name = "svm-linear"
    description = "linear SVM (one-vs-rest, standardised features)"
    exportable = True

    def layers_(self):
        return self._linear_layers()


@register
class RBFSVMHead(_SVMHead):
    __doc__ = _SVMHead.__doc__ + """

    Not exportable: an RBF kernel sums over the support vectors, not dense layers."""

    name = "svm-rbf"
    description = "RBF-kernel SVM (one-vs-rest, standardised features)"
    kernel = "rbf"
