"""The anchored head: logistic regression that starts from a prior linear classifier
(BirdNET's output layer in ``edgebird train``). Generated features; no BirdNET needed."""

from __future__ import annotations

import numpy as np
import pytest

from edgebird.heads import head_logits, make_head, sigmoid
from edgebird.heads.anchored import for_columns


def blobs(n_per: int, k: int = 3, dim: int = 16, seed: int = 0, spread: float = 1.0):
    """k classes around random centres, one-hot targets, plus the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, dim))
    x = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    y = np.repeat(np.eye(k), n_per, axis=0)
    return x, y, centres


def oracle_prior(centres: np.ndarray, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A linear classifier that knows the classes (as BirdNET knows its species)."""
    w = (centres - centres.mean(axis=0)).T * scale / np.linalg.norm(centres, axis=1).mean()
    return w, np.zeros(len(centres))  # centred: no bias needed


def macro_f1(y, p):
    from sklearn.metrics import f1_score

    return np.mean([f1_score(y[:, c] > 0.5, p[:, c] >= 0.5) for c in range(y.shape[1])])


def test_without_a_prior_it_is_scikit_learns_logistic_regression():
    """Same loss, same penalty, same class weights: the from-scratch case is exactly
    ``logreg`` (up to the solvers' tolerance)."""
    x, y, _ = blobs(20, spread=3.0)
    a = make_head("anchored").fit(x, y).scores(x)
    b = make_head("logreg").fit(x, y).scores(x)
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_a_zero_prior_column_is_the_same_as_no_prior():
    x, y, centres = blobs(15, spread=3.0)
    w, b = oracle_prior(centres)
    w[:, 1], b[1] = 0.0, 0.0
    with_prior = make_head("anchored", prior_weights=w, prior_bias=b).fit(x, y)
    without = make_head("anchored").fit(x, y)
    np.testing.assert_allclose(with_prior.scores(x)[:, 1], without.scores(x)[:, 1], atol=1e-6)
    assert list(with_prior.anchored_) == [True, False, True]


def test_one_example_per_class_keeps_what_the_prior_knows():
    """The few-shot case: one window per class to train. From scratch the head cannot
    generalise; anchored to a prior that knows the classes it does."""
    x_tr, y_tr, centres = blobs(1, k=4, dim=32, seed=1, spread=2.5)
    rng = np.random.default_rng(5)
    x_te = np.concatenate([c + 2.5 * rng.normal(size=(40, 32)) for c in centres])
    y_te = np.repeat(np.eye(4), 40, axis=0)
    w, b = oracle_prior(centres)
    anchored = make_head("anchored", prior_weights=w, prior_bias=b).fit(x_tr, y_tr)
    scratch = make_head("logreg").fit(x_tr, y_tr)
    prior_only = macro_f1(y_te, sigmoid(x_te @ w + b))
    assert macro_f1(y_te, anchored.scores(x_te)) >= prior_only - 0.05
    assert macro_f1(y_te, anchored.scores(x_te)) > macro_f1(y_te, scratch.scores(x_te)) + 0.1


def test_more_data_moves_it_away_from_a_wrong_prior():
    """A prior that has two classes swapped is corrected by enough data."""
    x, y, centres = blobs(60, k=3, seed=2)
    w, b = oracle_prior(centres)
    w = w[:, [1, 0, 2]]  # wrong for classes 0 and 1
    head = make_head("anchored", C=1.0, prior_weights=w, prior_bias=b).fit(x, y)
    x_te, y_te, _ = blobs(30, k=3, seed=2)
    assert macro_f1(y_te, head.scores(x_te)) > 0.9
    assert macro_f1(y_te, sigmoid(x_te @ w + b)) < 0.7


def test_its_layer_is_its_scores_and_exports():
    x, y, centres = blobs(10)
    w, b = oracle_prior(centres)
    head = make_head("anchored", prior_weights=w, prior_bias=b).fit(x, y)
    (lw, lb, relu), = head.layers_()
    assert lw.shape == (16, 3) and lb.shape == (3,) and not relu
    np.testing.assert_allclose(sigmoid(head_logits(head.layers_(), x)), head.scores(x),
                               atol=1e-5)


def test_a_prior_of_the_wrong_shape_is_refused():
    x, y, centres = blobs(5)
    w, b = oracle_prior(centres)
    with pytest.raises(ValueError, match="one column per class"):
        make_head("anchored", prior_weights=w[:, :2], prior_bias=b[:2]).fit(x, y)
    with pytest.raises(ValueError, match="C must be > 0"):
        make_head("anchored", C=0.0).fit(x, y)


def test_for_columns_keeps_the_prior_aligned_with_the_classes():
    """Held-out species: a class is dropped from the targets and from the prior alike."""
    x, y, centres = blobs(10)
    w, b = oracle_prior(centres)
    head = make_head("anchored", prior_weights=w, prior_bias=b)
    two = for_columns(head, [0, 2])
    assert two is not head and two.prior_weights.shape == (16, 2)
    np.testing.assert_array_equal(two.prior_weights, w[:, [0, 2]])
    two.fit(x, y[:, [0, 2]])  # fits: shapes agree
    plain = make_head("logreg")
    assert for_columns(plain, [0]) is plain


def test_train_classifier_anchors_the_default_head_to_the_prior():
    """``edgebird train`` passes BirdNET's columns; the default head uses them and the
    held-out-species step drops the left-out class from the prior."""
    from edgebird.training.features import Features
    from edgebird.training.train import TrainSettings, train_classifier

    x, y, centres = blobs(12, k=3, dim=16, seed=3, spread=2.0)
    groups = np.array([f"r{i // 3}" for i in range(len(x))])
    feats = Features(x.astype(np.float32), y.astype(np.float32), groups,
                     np.array([f"{g}.wav" for g in groups]), np.zeros(len(x)),
                     np.array(["positive"] * len(x)), ["a", "b", "c"])
    w, b = oracle_prior(centres)
    s = TrainSettings(folds=2, holdout_species=3, synthetic_negatives=0)
    assert s.head == "anchored"
    anchored = train_classifier(feats, s, echo=lambda m: None, prior=(w, b))
    plain = train_classifier(feats, s, echo=lambda m: None)
    assert anchored.final.head.anchored_.all() and not plain.final.head.anchored_.any()
    assert not np.allclose(anchored.final.layers[0][0], plain.final.layers[0][0])
    assert len(anchored.holdout) == 3  # the prior was cut to the classes left in
