"""Scores and detections from known logits (issue 5's first piece)."""

from __future__ import annotations

import numpy as np
import pytest

from edgebird.core.scores import Detection, flat_sigmoid, merge_consecutive, select, slope_sigmoid

LABELS = ["A_a", "B_b", "C_c"]


def test_sensitivity_shifts_the_logit_bna_style():
    assert flat_sigmoid(np.array([0.0]))[0] == pytest.approx(0.5)
    # S = 1.25 adds 2.5 to the logit; S = 0.75 subtracts 2.5; the slope stays 1
    assert flat_sigmoid(np.array([0.0]), 1.25)[0] == pytest.approx(1 / (1 + np.exp(-2.5)))
    assert flat_sigmoid(np.array([2.5]), 0.75)[0] == pytest.approx(0.5)
    assert flat_sigmoid(np.array([1e6]))[0] == pytest.approx(1 / (1 + np.exp(-20)))  # clipped
    with pytest.raises(ValueError, match="sensitivity"):
        flat_sigmoid(np.array([0.0]), 1.6)


def test_the_v1_slope_convention_differs():
    x = np.array([2.0])
    assert slope_sigmoid(x, 1.25)[0] == pytest.approx(1 / (1 + np.exp(-0.75 * 2.0)))
    assert slope_sigmoid(x, 1.25)[0] < flat_sigmoid(x, 1.25)[0]  # same number, other meaning
    assert slope_sigmoid(x, 1.0)[0] == pytest.approx(flat_sigmoid(x, 1.0)[0])


@pytest.fixture
def scores():
    return np.array([[0.9, 0.3, 0.1],
                     [0.2, 0.26, 0.24],
                     [0.05, 0.04, 0.03]])


def test_min_conf(scores):
    starts, ends = np.array([0.0, 3.0, 6.0]), np.array([3.0, 6.0, 9.0])
    got = select(scores, starts, ends, LABELS, min_conf=0.25, file="f")
    assert [(d.start, d.label, d.confidence) for d in got] == [
        (0.0, "A_a", 0.9), (0.0, "B_b", 0.3), (3.0, "B_b", 0.26)]
    assert len(select(scores, starts, ends, LABELS, min_conf=0.0)) == 9
    assert select(scores, starts, ends, LABELS, min_conf=0.95) == []


def test_top_n_bypasses_min_conf(scores):
    starts, ends = np.array([0.0, 3.0, 6.0]), np.array([3.0, 6.0, 9.0])
    got = select(scores, starts, ends, LABELS, min_conf=0.99, top_n=1)
    assert [(d.start, d.label) for d in got] == [(0.0, "A_a"), (3.0, "B_b"), (6.0, "A_a")]


def test_species_list_filters(scores):
    starts, ends = np.array([0.0, 3.0, 6.0]), np.array([3.0, 6.0, 9.0])
    got = select(scores, starts, ends, LABELS, min_conf=0.2, allowed={"B_b"})
    assert {d.label for d in got} == {"B_b"}
    got = select(scores, starts, ends, LABELS, top_n=2, allowed={"C_c"})
    assert [d.label for d in got] == ["C_c"] * 3


def test_overlap_shows_in_the_windows():
    """Overlapping windows give overlapping detections, which merging can join."""
    starts = np.arange(0, 6, 1.5)
    dets = select(np.full((4, 1), 0.8), starts, starts + 3, ["A_a"], min_conf=0.5)
    assert [d.start for d in dets] == [0.0, 1.5, 3.0, 4.5]
    merged = merge_consecutive(dets, max_hits=10)
    assert [(d.start, d.end) for d in merged] == [(0.0, 7.5)]


def test_merge_consecutive():
    d = [Detection("f", 0, 3, "A_a", 0.9), Detection("f", 3, 6, "A_a", 0.5),
         Detection("f", 6, 9, "A_a", 0.4), Detection("f", 9, 12, "A_a", 0.2),
         Detection("f", 15, 18, "A_a", 0.7), Detection("f", 3, 6, "B_b", 0.6)]
    assert merge_consecutive(d, 1) == d
    merged = merge_consecutive(d, 3)
    a = [m for m in merged if m.label == "A_a"]
    assert [(m.start, m.end) for m in a] == [(0, 9), (9, 12), (15, 18)]
    assert a[0].confidence == pytest.approx((0.9 + 0.5 + 0.4) / 3)
    four = merge_consecutive(d, 4)
    assert [m for m in four if m.label == "A_a"][0].confidence == pytest.approx(0.6)  # top 3
    with pytest.raises(ValueError):
        merge_consecutive(d, 0)
