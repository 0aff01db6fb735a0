"""Logistic regression anchored to a prior linear classifier: BirdNET's own, for its species.

BirdNET's output layer already holds a linear classifier on the very embedding edgebird
trains on, for each of its 6,522 labels, learned from far more audio than any user has. A
head that starts from scratch throws that away: on devbirds with one recording per species
to train (the commonest few-shot case), plain logistic regression reached macro F1 0.64 at
0.5 on the other nine recordings while BirdNET's own scores reached 0.97 (docs/TRAINING.md).

This head fits, per class, a correction to the prior rather than a classifier::

    logit(x) = x . w0 + b0  +  ((x - mean) / scale) . v + e

where ``(w0, b0)`` is the prior (``prior_weights[:, c]``, ``prior_bias[c]``; zero for a class
the prior does not know, which makes that class plain logistic regression), and only ``v``
is penalised (L2, ``C`` as in scikit-learn: larger C = more trust in the data). With little
data the model stays near BirdNET; with more, the data pulls it where it has to go. The
penalty is on the standardised correction, so C means what it means for ``logreg``.

It stays one dense layer (``layers_``: ``W = w0 + v / scale``, the scaler folded into the
bias), so it exports and runs like any linear head. The loss weights follow ``logreg``
(``balanced`` one-vs-rest, ``pos_weight``, ``sample_weight``); each class is one smooth,
convex problem solved with scipy's L-BFGS, so the fit is deterministic.

The prior is data, not a setting: ``edgebird train`` fills it from the BirdNET model for the
classes whose label is a BirdNET label (``training.birdnet_prior``); ``for_columns`` keeps it
aligned when a class is left out (the held-out species measurement).
"""

from __future__ import annotations

import numpy as np

from edgebird.heads.base import Head, register, sigmoid
from edgebird.heads.linear import CONSTANT_LOGIT, _class_weight


def _fit_correction(a: np.ndarray, z0: np.ndarray, yc: np.ndarray, weight: np.ndarray,
                    C: float) -> tuple[np.ndarray, float]:
    """``(v, e)`` minimising ``C * sum(weight * logloss(z0 + a v + e)) + |v|^2 / 2``."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    n, d = a.shape
    y = yc.astype(np.float64)

    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        v, e = p[:d], p[d]
        z = z0 + a @ v + e
        loss = -(y * log_expit(z) + (1.0 - y) * log_expit(-z))
        r = weight * (expit(z) - y)
        grad = np.empty_like(p)
        grad[:d] = C * (a.T @ r) + v
        grad[d] = C * r.sum()
        return float(C * (weight @ loss) + 0.5 * v @ v), grad

    res = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 2000})
    return res.x[:d], float(res.x[d])


@register
class AnchoredLogisticHead(Head):
    """One-vs-rest logistic regression whose logit is a penalised correction of a prior
    linear classifier (BirdNET's, see the module doc). Fitted: ``mean_``, ``scale_``,
    ``coef_`` [dim, classes] (the correction, standardised space), ``intercept_``,
    ``constant_`` (per class the constant 0/1 score of a class constant in training, else
    NaN) and ``anchored_`` (per class: had a non-zero prior)."""

    name = "anchored"
    description = ("logistic regression anchored to BirdNET's own classifier for the "
                   "classes BirdNET knows (from scratch for the others)")
    exportable = True

    def __init__(self, C: float = 0.1, prior_weights: np.ndarray | None = None,
                 prior_bias: np.ndarray | None = None, pos_weight: float = 1.0,
                 balanced: bool = True):
        self.C = C
        self.prior_weights = prior_weights
        self.prior_bias = prior_bias
        self.pos_weight = pos_weight
        self.balanced = balanced

    def _prior(self, dim: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.prior_weights is None:
            return np.zeros((dim, k)), np.zeros(k)
        w = np.asarray(self.prior_weights, dtype=np.float64)
        b = np.zeros(k) if self.prior_bias is None else np.asarray(self.prior_bias,
                                                                   dtype=np.float64)
        if w.shape != (dim, k) or b.shape != (k,):
            raise ValueError(f"the prior is {w.shape} + {b.shape}, the data needs "
                             f"({dim}, {k}) + ({k},): one column per class of the "
                             "training data, one row per feature")
        return w, b

    def fit(self, x, y, sample_weight=None) -> AnchoredLogisticHead:
        if self.C <= 0:
            raise ValueError("C must be > 0")
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        n, dim = x.shape
        k = y.shape[1]
        w0, b0 = self._prior(dim, k)
        self.mean_ = x.mean(axis=0)
        scale = x.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)  # a constant feature: no correction
        a = (x - self.mean_) / self.scale_
        rows = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        self.coef_ = np.zeros((dim, k))
        self.intercept_ = np.zeros(k)
        self.constant_ = np.full(k, np.nan)
        self.anchored_ = np.array([bool(np.any(w0[:, c]) or b0[c]) for c in range(k)])
        for c in range(k):
            yc = y[:, c] > 0.5
            if yc.all() or not yc.any():
                self.constant_[c] = float(yc.all())
                continue
            cw = _class_weight(yc, self.pos_weight, self.balanced) or {True: 1.0, False: 1.0}
            weight = rows * np.where(yc, cw[True], cw[False])
            self.coef_[:, c], self.intercept_[c] = _fit_correction(
                a, x @ w0[:, c] + b0[c], yc, weight, self.C)
        self.prior_ = (w0, b0)
        return self

    def layers_(self):
        """One dense layer: prior plus correction, the scaler folded in (float64 → float32)."""
        self._check_fitted()
        w0, b0 = self.prior_
        v = self.coef_ / self.scale_[:, None]
        w = w0 + v
        b = b0 + self.intercept_ - self.mean_ @ v
        const = ~np.isnan(self.constant_)
        w[:, const] = 0.0
        b[const] = np.where(self.constant_[const] > 0.5, CONSTANT_LOGIT, -CONSTANT_LOGIT)
        return [(w.astype(np.float32), b.astype(np.float32), False)]

    def logits(self, x) -> np.ndarray:
        (w, b, _), = self.layers_()
        return np.asarray(x, dtype=np.float64) @ w.astype(np.float64) + b

    def scores(self, x) -> np.ndarray:
        """sigmoid of the logits; a class constant in training scores its constant exactly
        (as ``logreg`` does), its layer gives the same to 1e-13."""
        p = sigmoid(self.logits(x))
        const = ~np.isnan(self.constant_)
        p[:, const] = self.constant_[const]
        return p


def for_columns(head: Head, columns: list[int]) -> Head:
    """``head`` unchanged, or, for an anchored head with a prior, an unfitted clone whose
    prior keeps only ``columns`` (the classes it will be trained on)."""
    from sklearn.base import clone

    params = head.get_params()
    if params.get("prior_weights") is None:
        return head
    fresh = clone(head)
    bias = params.get("prior_bias")
    fresh.set_params(prior_weights=np.asarray(params["prior_weights"])[:, columns],
                     prior_bias=None if bias is None else np.asarray(bias)[columns])
    return fresh
