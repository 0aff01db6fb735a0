"""The head contract, as scikit-learn's ``check_estimator`` does it: every registered head on
generated features of every backbone's width (no real model).

Covers what each head used to test on its own (interface, pickling) plus the estimator
conventions: parameters stored as given, ``clone``, fitted attributes ending in ``_``, a clear
error before ``fit``, and for exportable heads that the exported layers give the scores.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from edgebird.backbones import BACKBONES
from edgebird.heads import (
    HEADS,
    KERAS_HEADS,
    NotExportableError,
    exportable_heads,
    head_logits,
    make_head,
    sigmoid,
)

#: Embedding widths of the backbones (BirdNET's final embedding, its fused layers, the
#: hand-crafted statistics); a new backbone has to be added here.
WIDTHS = {"birdnet": 1024, "birdnet-fusion": 1768, "handcrafted": 218}
#: Test-sized parameters (the dense heads' 100 epochs would only cost time).
FAST = {"dense": {"epochs": 25}, "dense-mixup": {"epochs": 25}}
N_CLASSES = 3


def test_every_backbone_has_a_width():
    assert set(WIDTHS) == set(BACKBONES)


def separable(dim: int, n_per: int = 16, background: int = 12, seed: int = 0):
    """Well-separated non-negative clusters (like embeddings) plus background rows."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (N_CLASSES, dim)) * 2
    x = [np.abs(centres[c] + 0.2 * rng.standard_normal((n_per, dim))) for c in range(N_CLASSES)]
    x.append(np.abs(0.5 + 0.2 * rng.standard_normal((background, dim))))
    y = np.zeros((N_CLASSES * n_per + background, N_CLASSES), np.float32)
    for c in range(N_CLASSES):
        y[c * n_per:(c + 1) * n_per, c] = 1
    return np.concatenate(x).astype(np.float32), y


def _needs(name: str) -> None:
    if name in KERAS_HEADS:
        pytest.importorskip("tensorflow")


@cache
def fitted(name: str, backbone: str):
    x, y = separable(WIDTHS[backbone])
    return make_head(name, **FAST.get(name, {})).fit(x, y), x, y


heads = pytest.mark.parametrize("name", list(HEADS))
both = pytest.mark.parametrize("backbone", list(WIDTHS))


@heads
def test_registry_and_class_attributes(name):
    cls = HEADS[name]
    assert cls.name == name and cls.description
    assert isinstance(cls.exportable, bool)
    with pytest.raises(ValueError, match="unknown head"):
        make_head("forest")
    with pytest.raises(ValueError, match="has no parameter"):
        make_head(name, no_such_option=1)


@heads
def test_parameters_are_stored_as_given_and_clone_keeps_them(name):
    head = make_head(name)
    params = head.get_params()
    given = {k: (object() if v is None else type(v)(v)) for k, v in params.items()}
    rebuilt = type(head)(**given)
    for k, v in given.items():
        assert getattr(rebuilt, k) is v, k  # no logic in __init__
    twin = clone(head)
    assert twin is not head and twin.get_params() == params
    assert type(twin).name == name


@heads
@both
def test_fit_scores_and_fitted_attributes(name, backbone):
    _needs(name)
    head, x, y = fitted(name, backbone)
    fresh = make_head(name, **FAST.get(name, {}))
    learned = set(vars(head)) - set(vars(fresh))
    assert learned and all(a.endswith("_") for a in learned), learned
    p = head.scores(x)
    assert p.shape == y.shape and p.dtype.kind == "f"
    assert ((p >= 0) & (p <= 1)).all()
    pos = y.any(axis=1)
    assert (p[pos].argmax(axis=1) == y[pos].argmax(axis=1)).all()  # the right class wins
    assert (p[pos, y[pos].argmax(axis=1)] >= 0.5).mean() > 0.9  # 0.5 is the decision point
    # clone gives an unfitted copy with the same parameters
    twin = clone(head)
    assert twin.get_params() == head.get_params()
    with pytest.raises(NotFittedError):
        twin.scores(x)


@heads
def test_unfitted_head_says_so(name):
    with pytest.raises(NotFittedError, match="not fitted"):
        make_head(name).scores(np.zeros((2, 8), np.float32))


@heads
def test_pickles(name):
    _needs(name)
    head, x, _ = fitted(name, "handcrafted")
    again = pickle.loads(pickle.dumps(head))
    np.testing.assert_array_equal(again.scores(x), head.scores(x))
    assert again.get_params() == head.get_params()


@heads
@both
def test_exportable_heads_layers_give_their_scores(name, backbone):
    _needs(name)
    head, x, _ = fitted(name, backbone)
    if not head.exportable:
        with pytest.raises(NotExportableError, match="cannot be exported"):
            head.layers_()
        return
    layers = head.layers_()
    assert layers[-1][1].shape == (N_CLASSES,) and layers[0][0].shape[0] == x.shape[1]
    for w, b, relu in layers:
        assert w.dtype == np.float32 and b.dtype == np.float32 and isinstance(relu, bool)
    rng = np.random.default_rng(5)
    for rows in (x, np.abs(rng.standard_normal((9, x.shape[1]))).astype(np.float32)):
        np.testing.assert_allclose(sigmoid(head_logits(layers, rows)), head.scores(rows),
                                   atol=1e-5)


def test_row_weights_are_refused_by_heads_that_cannot_use_them():
    x, y = separable(16)
    w = np.full(len(x), 0.5)
    for name, cls in HEADS.items():
        if not cls.weighs_rows:
            with pytest.raises(ValueError, match="cannot weigh rows"):
                make_head(name).fit(x, y, sample_weight=w)


def test_linear_heads_export_with_constant_classes():
    """A class with no positive example scores 0 everywhere, and so does its exported layer."""
    x, y = separable(16)
    y[:, 2] = 0
    for name in exportable_heads():
        if name in KERAS_HEADS:
            continue
        head = make_head(name).fit(x, y)
        np.testing.assert_allclose(sigmoid(head_logits(head.layers_(), x)), head.scores(x),
                                   atol=1e-5)
        assert (head.scores(x)[:, 2] == 0).all()


def test_heads_import_neither_tensorflow_nor_training():
    code = ("import sys, edgebird.heads; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'keras') or m.startswith('edgebird.training')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_registry_order_is_the_experiments_order():
    assert list(HEADS) == ["logreg", "svm-linear", "svm-rbf", "anchored", "dense", "dense-mixup",
                           "knn",
                           "prototype"]
