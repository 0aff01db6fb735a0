"""The research toolkit on generated data: splits, draws, heads, pseudo-labelling, reports.

Features are made in code (well-separated Gaussian clusters per class, several windows per
recording), so every property is checked without the model; one end-to-end test runs the
commands on synthetic songs through the real BirdNET, fusion and hand-crafted backbones.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgebird.experiments.commands import fresh_head
from edgebird.experiments.fewshot import (
    Noise,
    learning_curve,
    make_splits,
    mean_ci,
    paired_difference,
    summarise,
    usable_shots,
)
from edgebird.experiments.pseudolabel import Pool, PseudoSettings, choose, run_rounds, split_pool
from edgebird.heads import HEADS, KERAS_HEADS, KNNHead, LogisticHead, PrototypeHead
from edgebird.training.features import Features

FAST_HEADS = [h for h in HEADS if h not in KERAS_HEADS]


def clusters(n_classes=5, recordings=8, windows=3, dim=24, spread=0.6, background=4,
             seed=0) -> Features:
    """Class c's windows around a random centre; recordings are the groups."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes, dim)) * 2
    x, y, groups, starts = [], [], [], []
    for c in range(n_classes):
        for g in range(recordings):
            offset = 0.3 * rng.normal(0, 1, dim)  # recordings differ a little
            for w in range(windows):
                x.append(centres[c] + offset + spread * rng.normal(0, 1, dim))
                y.append(np.eye(n_classes)[c])
                groups.append(f"c{c}-rec{g}")
                starts.append(3.0 * w)
    for g in range(background):
        x.append(rng.normal(0, 1, dim))
        y.append(np.zeros(n_classes))
        groups.append(f"bg{g}")
        starts.append(0.0)
    n = len(x)
    kind = np.array(["positive"] * (n - background) + ["background"] * background)
    return Features(np.array(x, np.float32), np.array(y, np.float32), np.array(groups),
                    np.array([f"{g}.wav" for g in groups]), np.array(starts), kind,
                    [f"class{c}" for c in range(n_classes)])


def noise(dim=24, seed=1) -> Noise:
    rng = np.random.default_rng(seed)
    return Noise(rng.normal(0, 1, (10, dim)).astype(np.float32),
                 rng.normal(0, 1, (20, dim)).astype(np.float32))


@pytest.fixture(scope="module")
def feats() -> Features:
    return clusters()


# -- splits and draws ---------------------------------------------------------------------------
def test_no_recording_on_both_sides(feats):
    for split in make_splits(feats, repeats=6, test_fraction=0.3, seed=3):
        train_groups = set(feats.groups[split.pool])
        test_groups = set(feats.groups[split.test])
        assert not train_groups & test_groups
        for k in (1, 2, 4, 100):
            assert not set(feats.groups[split.draw(k)]) & test_groups
        # the unseen class is nowhere in training or in the scored test rows
        u = split.unseen
        assert u is not None
        assert not (feats.y[split.pool, u] > 0.5).any()
        assert not (feats.y[split.test, u] > 0.5).any()
        assert (feats.y[split.unseen_rows, u] > 0.5).all()
        # every trained class is tested, on a share of its recordings
        for c in split.trained:
            n_test = len(set(feats.groups[split.test][feats.y[split.test, c] > 0.5]))
            assert n_test == round(0.3 * 8)


def test_every_class_is_unseen_once_over_as_many_repeats(feats):
    splits = make_splits(feats, repeats=5, seed=0)
    assert sorted(s.unseen for s in splits) == list(range(5))
    assert all(s.unseen is None for s in make_splits(feats, 2, open_set=False))


def test_draws_are_nested_and_spread_over_recordings(feats):
    split = make_splits(feats, repeats=1, seed=1)[0]
    previous = set()
    for k in (1, 2, 3, 5, 8):
        rows = set(split.draw(k).tolist())
        assert previous <= rows
        previous = rows
        for c in split.trained:
            mine = [r for r in rows if feats.y[r, c] > 0.5]
            assert len(mine) == k
            # k <= recordings in the pool: k different recordings
            assert len({feats.groups[r] for r in mine}) == min(k, 6)
    background = split.draw(1)[feats.kind[split.draw(1)] == "background"]
    assert len(background) == len(split.background) > 0


def test_splits_and_curves_reproducible_with_a_seed(feats):
    a, b = make_splits(feats, 3, seed=7), make_splits(feats, 3, seed=7)
    c = make_splits(feats, 3, seed=8)
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.draw(3), y.draw(3))
               for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a, c, strict=True))
    from edgebird.experiments.commands import candidates

    def curve():
        rows = learning_curve({"f": feats}, {"f": noise()},
                              candidates([("f", "logreg"), ("f", "prototype")]), a, [1, 3],
                              echo=lambda m: None)
        return [{k: v for k, v in r.items() if k != "fit_seconds"} for r in rows]

    assert curve() == curve()


def test_shots_are_capped_by_the_data(feats):
    splits = make_splits(feats, 2, test_fraction=0.3, seed=0)
    shots, limit = usable_shots(splits, [1, 2, 4, 50, 100])
    assert limit == 6 * 3  # 6 pool recordings x 3 windows
    assert shots == [1, 2, 4, limit]
    assert usable_shots(splits, [2, 4]) == ([2, 4], limit)


def test_classes_with_one_recording_are_refused():
    f = clusters(n_classes=3, recordings=1)
    with pytest.raises(ValueError, match="at least 2 recordings"):
        make_splits(f, 2)


# -- heads (the interface itself: tests/test_heads.py) ------------------------------------
@pytest.mark.parametrize("name", FAST_HEADS)
def test_heads_learn_separable_classes(feats, name):
    split = make_splits(feats, 1, seed=2)[0]
    from edgebird.experiments.fewshot import evaluate

    row = evaluate(fresh_head(name), feats.x, feats.y, split, split.draw(4), noise(),
                   feats.classes)
    assert row["f1"] > 0.9, row
    assert row["auprc"] > 0.95
    assert 0.0 <= row["noise_fp"] <= 1.0 and 0.0 <= row["unseen_fp"] <= 1.0


def test_fresh_heads_are_seeded_only_where_they_take_a_seed():
    assert fresh_head("dense", 7).seed == 7
    assert fresh_head("logreg", 7).get_params() == LogisticHead().get_params()
    assert fresh_head("logreg", 0, 2.0).pos_weight == 2.0


def test_knn_caps_k_at_the_shots_and_background_counts():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], np.float32)
    head = KNNHead(k=5).fit(x, y)
    # one example of class 1: k = 1, so its own neighbourhood is a full vote
    assert head.scores(np.array([[0.05, 1]], np.float32)).tolist() == [[0.0, 1.0]]
    assert head.scores(np.array([[-1, 0.05]], np.float32)).tolist() == [[0.0, 0.0]]


def test_prototype_background_prototype_keeps_noise_below_half():
    x = np.array([[5, 0], [5.2, 0.1], [0, 5], [0.1, 5.1], [-5, -5], [-5.1, -4.9]], np.float32)
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 0], [0, 0]], np.float32)
    p = PrototypeHead().fit(x, y).scores(np.array([[5, 0.2], [-4, -5]], np.float32))
    assert p[0, 0] > 0.5 and (p[1] < 0.5).all()


def test_pos_weight_trades_specificity_for_sensitivity(feats):
    lo = LogisticHead(pos_weight=0.2).fit(feats.x, feats.y).scores(feats.x)
    hi = LogisticHead(pos_weight=5.0).fit(feats.x, feats.y).scores(feats.x)
    assert hi.mean() > lo.mean()
    with pytest.raises(ValueError, match="knn head has no parameter pos_weight"):
        fresh_head("knn", pos_weight=2.0)


# -- statistics -------------------------------------------------------------------------------
def test_mean_ci_and_paired_differences():
    m, lo, hi = mean_ci([0.5, 0.7, 0.6])
    assert m == pytest.approx(0.6)
    assert lo == pytest.approx(0.6 - 4.302653 * 0.1 / np.sqrt(3), rel=1e-5)
    assert mean_ci([0.99, 1.0, 0.9], bounds=(0, 1))[2] == 1.0
    assert np.isnan(mean_ci([0.3])[1])
    rows = [{"head": h, "shots": 1, "repeat": r, "f1": v}
            for h, vals in (("a", [0.9, 0.8, 0.85]), ("b", [0.7, 0.6, 0.65]))
            for r, v in enumerate(vals)]
    (d,) = paired_difference(rows, {"head": "a"}, {"head": "b"})
    assert d["diff"] == pytest.approx(0.2) and d["lo"] == pytest.approx(0.2)  # same gap each
    assert d["pairs"] == 3
    summary = summarise([{**r, "backbone": "x", **{k: r["f1"] for k in
                                                   ("auprc", "auroc", "sensitivity",
                                                    "specificity", "noise_fp", "unseen_fp")}}
                         for r in rows])
    assert {s["head"] for s in summary} == {"a", "b"} and summary[0]["repeats"] == 3


# -- pseudo-labelling -----------------------------------------------------------------------------
def test_choose_takes_confident_argmax_rows_up_to_the_cap():
    p = np.array([[0.95, 0.1], [0.97, 0.96], [0.92, 0.2], [0.5, 0.99], [0.91, 0.3]])
    taken = np.array([False, False, False, False, True])
    picks = choose(p, taken, threshold=0.9, cap=1)
    assert picks == [(1, 0), (3, 1)]  # row 1 is class 0's best; row 4 was taken
    assert choose(p, taken, 0.9, cap=10) == [(1, 0), (0, 0), (2, 0), (3, 1)]


def test_pseudo_rounds_add_correct_labels_and_round_zero_is_the_baseline(feats):
    split = make_splits(feats, 1, seed=4)[0]
    s = PseudoSettings(shots=2, rounds=2, threshold=0.8, cap=3, weight=0.5)
    pool = split_pool(feats.x, feats.y, split, split.draw(2))
    assert not set(feats.groups[split.test]) & {g for g in feats.groups[split.pool]}
    nz = noise()
    rows = run_rounds(lambda: LogisticHead(), feats.x, feats.y, split, nz, feats.classes,
                      pool.concat(Pool(nz.eval, np.zeros((len(nz.eval), 5)))), s)
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert rows[0]["pseudo_labels"] == 0
    assert 0 < rows[1]["pseudo_labels"] <= 3 * len(split.trained)
    assert rows[2]["pseudo_labels"] >= rows[1]["pseudo_labels"]
    assert rows[-1]["pseudo_precision"] == 1.0  # separable clusters: every label right
    from edgebird.experiments.fewshot import evaluate

    base = evaluate(LogisticHead(), feats.x, feats.y, split, split.draw(2), nz, feats.classes)
    assert rows[0]["f1"] == base["f1"] and rows[0]["auprc"] == base["auprc"]


def test_pseudo_settings_are_checked():
    with pytest.raises(ValueError, match="threshold"):
        PseudoSettings(threshold=1.5)
    with pytest.raises(ValueError, match="weights"):
        PseudoSettings(pos_weights=(0.0,))


# -- the commands, end to end on synthetic songs ------------------------------------------------
def test_experiment_commands_end_to_end(tmp_path):
    """curve (BirdNET + two heads), then report (every head, fusion, hand-crafted, pseudo) on
    synthetic songs through the real backbones: files written, numbers sane."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("librosa")
    import csv

    from edgebird.cli import main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=4, seconds=6.0, seed=5)
    common = ["--store", str(tmp_path / "store"), "--repeats", "2", "-q", "--workers", "1"]
    assert main(["experiment", "curve", str(tmp_path / "data"), "-o", str(tmp_path / "c"),
                 "--shots", "1", "2", "--heads", "logreg", "prototype", *common]) == 0
    rows = list(csv.DictReader(open(tmp_path / "c" / "curve_runs.csv")))
    assert len(rows) == 2 * 2 * 2 and {r["head"] for r in rows} == {"logreg", "prototype"}
    assert (tmp_path / "c" / "learning_curve.png").stat().st_size > 10_000
    assert main(["experiment", "report", str(tmp_path / "data"), "-o", str(tmp_path / "r"),
                 "--shots", "1", "2", "--rounds", "1", "--pseudo-shots", "1", *common]) == 0
    text = (tmp_path / "r" / "EXPERIMENTS.md").read_text()
    for expected in ("birdnet-fusion", "handcrafted", "dense-mixup", "Pseudo-labelling",
                     "fusion vs final embedding", "BirdNET vs hand-crafted", "Protocol",
                     "Findings", "experiments/learning_curve.png"):
        assert expected in text
    assert (tmp_path / "r" / "experiments" / "learning_curve.png").is_file()
    summary = list(csv.DictReader(open(tmp_path / "r" / "experiments" / "curve_summary.csv")))
    f1 = {(r["backbone"], r["head"], r["shots"]): float(r["f1"]) for r in summary}
    assert f1["birdnet", "logreg", "2"] > 0.6  # four clearly different synthetic songs
    # a second run is a cache hit for every backbone
    assert main(["experiment", "curve", str(tmp_path / "data"), "-o", str(tmp_path / "c2"),
                 "--shots", "1", "--heads", "knn", "--backbones", "handcrafted",
                 "birdnet-fusion", *common]) == 0


def test_pseudo_command_with_an_unlabelled_folder(tmp_path):
    """The user's own unlabelled recordings join the pool (every window, truth unknown)."""
    import csv

    from edgebird.cli import main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=3, seconds=6.0, seed=2)
    write_dataset(tmp_path / "field", clips_per_class=2, seconds=9.0, seed=3,
                  noise_folder=False)
    (tmp_path / "field" / "broken.wav").write_bytes(b"RIFF not audio")
    assert main(["experiment", "pseudo", str(tmp_path / "data"), "-o", str(tmp_path / "p"),
                 "--unlabelled", str(tmp_path / "field"), "--store", str(tmp_path / "store"),
                 "--repeats", "2", "--rounds", "2", "--pseudo-shots", "1", "--threshold",
                 "0.6", "--pos-weight", "1", "2", "-q", "--workers", "1"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "p" / "pseudo_runs.csv")))
    assert len(rows) == 2 * 2 * 3  # weights x repeats x rounds 0..2
    text = (tmp_path / "p" / "pseudo.md").read_text()
    assert "unlabelled recordings" in text  # 4 songs x 2 clips x 3 windows in the pool
    assert any(int(r["pseudo_labels"]) > int(r["pseudo_known"]) for r in rows), \
        "some pseudo labels should come from the unlabelled folder (truth unknown)"
    assert "broken.wav" in (tmp_path / "store" / "error_log.txt").read_text()


def test_experiment_errors_are_clear(tmp_path, capsys):
    from edgebird.cli import main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=1, seconds=4.0, seed=1)
    code = main(["experiment", "curve", str(tmp_path / "data"), "-o", str(tmp_path / "o"),
                 "--store", str(tmp_path / "store"), "-q", "--workers", "1"])
    assert code == 2
    assert "at least 2 recordings per class" in capsys.readouterr().err
    assert main(["experiment", "curve", str(tmp_path / "missing"), "-o",
                 str(tmp_path / "o")]) == 2
