"""Heads that compare with the training rows themselves: k nearest neighbours and prototypes.

Neither is a stack of dense layers (kNN looks rows up, the prototype head's softmax runs over
classes *and* a background prototype), so neither is exportable; neither weighs rows.
"""

from __future__ import annotations

import numpy as np

from edgebird.heads.base import Head, register


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@register
class KNNHead(Head):
    """The share of the ``k`` nearest training rows (cosine distance) that carry the class;
    0.5 is a majority of neighbours. Background rows are neighbours without a label. ``k`` is
    capped at the smallest class's count (fitted ``k_``), so at 1 shot it is the nearest
    neighbour (with k above the shots a class could never reach a majority)."""

    name = "knn"
    description = "k nearest neighbours (k=5, cosine)"
    weighs_rows = False

    def __init__(self, k: int = 5):
        self.k = k

    def fit(self, x, y, sample_weight=None) -> KNNHead:
        self._check_weights(sample_weight)
        self.x_ = _unit(np.asarray(x, dtype=np.float64))
        self.y_ = (y > 0.5).astype(np.float64)
        counts = self.y_.sum(axis=0)
        self.k_ = int(max(1, min(self.k, counts[counts > 0].min(initial=self.k), len(self.x_))))
        return self

    def scores(self, x) -> np.ndarray:
        self._check_fitted()
        k = self.k_
        sim = _unit(np.asarray(x, dtype=np.float64)) @ self.x_.T
        nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        return self.y_[nearest].mean(axis=1)


@register
class PrototypeHead(Head):
    """Nearest class mean (prototypical networks' rule): features centred and L2-normalised,
    one prototype per class and one for background, scores a softmax of cosine similarities
    over the prototypes with temperature ``temperature``. Fitted: ``mean_``,
    ``prototypes_``, ``n_classes_``."""

    name = "prototype"
    description = "nearest class mean (cosine, with a background prototype)"
    weighs_rows = False

    def __init__(self, temperature: float = 0.1):
        self.temperature = temperature

    def fit(self, x, y, sample_weight=None) -> PrototypeHead:
        self._check_weights(sample_weight)
        x = np.asarray(x, dtype=np.float64)
        self.mean_ = x.mean(axis=0)
        u = _unit(x - self.mean_)
        pos = y > 0.5
        self.n_classes_ = y.shape[1]
        protos = [u[pos[:, c]].mean(axis=0) if pos[:, c].any() else np.zeros(u.shape[1])
                  for c in range(y.shape[1])]
        background = ~pos.any(axis=1)
        if background.any():
            protos.append(u[background].mean(axis=0))
        self.prototypes_ = _unit(np.stack(protos))
        return self

    def scores(self, x) -> np.ndarray:
        self._check_fitted()
        sim = _unit(np.asarray(x, dtype=np.float64) - self.mean_) @ self.prototypes_.T
        z = sim / self.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        return p[:, :self.n_classes_]
