"""The head protocol, the registry of heads, and the numpy forward pass of exported layers.

A head is a scikit-learn estimator on fixed features (embeddings): every constructor
parameter is stored as given (no logic in ``__init__``), whatever ``fit`` learns ends in ``_``,
``get_params`` / ``set_params`` / ``sklearn.base.clone`` work, and ``name`` is a class
attribute (the registry key and the command-line name). ``fit(x, y, sample_weight=None)``
takes multi-label 0/1 targets ``[n, classes]`` (rows of zeros are background) and
``scores(x)`` gives ``[n, classes]`` in [0, 1] with 0.5 as the decision point, so one set of
metrics treats every head alike.

Exportable heads (``exportable = True``) also give ``layers_()``: dense layers
``(W [in, out] float32, b [out] float32, relu)`` whose forward pass (``head_logits``) gives
**logits** with ``scores == sigmoid(logits)``. That is all ``model_export`` needs, so any
exportable head ships as a head-only or standalone ``.tflite`` the same way.

Heads whose training length is tuned (``tunes_epochs = True``) accept
``fit(..., validation=(x_val, y_val))``, report ``best_epoch_`` and train exactly
``fit_epochs`` epochs when that parameter is set; cross-validation uses this to pick the
epoch count on inner folds.

Nothing here imports TensorFlow or ``edgebird.training``: training uses heads, never the
reverse.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

#: Registered head classes by ``name``, in registration order (the order of ``--heads all``).
HEADS: dict[str, type[Head]] = {}


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))


def head_logits(layers: list, x: np.ndarray) -> np.ndarray:
    """The forward pass of dense layers: what an exported .tflite head computes."""
    h = np.asarray(x, dtype=np.float32)
    for w, b, relu in layers:
        h = h @ w + b
        if relu:
            h = np.maximum(h, 0.0)
    return h


class NotExportableError(ValueError):
    """The head's scores are not a stack of dense layers (e.g. kNN), so it has no .tflite."""


class Head(BaseEstimator):
    """Base of every head: the interface, the fitted check and the export refusal."""

    #: Registry and command-line name.
    name: ClassVar[str] = ""
    #: One line for ``--help`` and reports.
    description: ClassVar[str] = ""
    #: ``layers_()`` gives the head as dense layers (logits), so it can be exported.
    exportable: ClassVar[bool] = False
    #: ``fit`` takes ``validation=`` and the head reports ``best_epoch_`` (see module doc).
    tunes_epochs: ClassVar[bool] = False
    #: ``fit`` honours ``sample_weight`` (pseudo-labelled rows counting less).
    weighs_rows: ClassVar[bool] = True

    def fit(self, x: np.ndarray, y: np.ndarray,
            sample_weight: np.ndarray | None = None) -> Head:
        raise NotImplementedError

    def scores(self, x: np.ndarray) -> np.ndarray:
        """``[n, classes]`` in [0, 1]; a class is detected at >= 0.5."""
        raise NotImplementedError

    def layers_(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """Dense layers in logit space: ``sigmoid(head_logits(layers_(), x)) == scores(x)``."""
        raise NotExportableError(
            f"the {self.name} head is not a stack of dense layers and cannot be exported as "
            f".tflite; exportable heads: {', '.join(exportable_heads())}")

    def _check_fitted(self) -> None:
        check_is_fitted(self, msg=f"this {self.name} head is not fitted yet: call fit() first")

    def _check_weights(self, sample_weight: np.ndarray | None) -> None:
        if not self.weighs_rows and sample_weight is not None \
                and not np.allclose(sample_weight, 1.0):
            raise ValueError(f"the {self.name} head cannot weigh rows; use logreg or an SVM "
                             "head for weighted (pseudo-labelled) rows")


def register(cls: type[Head]) -> type[Head]:
    """Class decorator: add a head to ``HEADS`` under its ``name``."""
    HEADS[cls.name] = cls
    return cls


def params_of(name: str) -> list[str]:
    """The constructor parameters of head ``name``."""
    return list(_head_class(name)._get_param_names())


def make_head(name: str, **params) -> Head:
    """A fresh, unfitted head by name (one of ``HEADS``) with these parameters."""
    cls = _head_class(name)
    unknown = sorted(set(params) - set(cls._get_param_names()))
    if unknown:
        raise ValueError(f"the {name} head has no parameter {', '.join(unknown)} (it has: "
                         f"{', '.join(cls._get_param_names()) or 'none'})")
    return cls(**params)


def exportable_heads() -> list[str]:
    return [n for n, cls in HEADS.items() if cls.exportable]


def _head_class(name: str) -> type[Head]:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; available: {', '.join(HEADS)}")
    return HEADS[name]
