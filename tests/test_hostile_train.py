"""Issue 17 on the training side: labels that would break the labels file or the tables,
annotation rows and files that train nothing, ``--folds 1`` on tiny sets, and ``inspect``'s
threshold warnings. Every file is made in the test."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fakes import FakeModel, levels_file
from test_train import blobs

from edgebird.cli import main
from edgebird.pipeline.engine import EngineSettings
from edgebird.training.dataset import (
    DatasetError,
    LabelledFile,
    TrainingSet,
    check,
    check_folds,
    read_annotations,
    scan_folder,
)
from edgebird.training.features import build_features
from edgebird.training.metrics import class_metrics
from edgebird.training.train import TrainSettings, train_classifier


# -- item 5: tabs and line breaks in labels ----------------------------------------------------
@pytest.mark.parametrize(("name", "what"), [("Bird\tA", "a tab"), ("Bird\nA", "a line break")])
def test_labels_with_a_tab_or_line_break_are_refused(tmp_path, make_audio, name, what):
    """Such a folder made a labels file with more lines than outputs (or 13 Raven columns)."""
    make_audio(f"d/{name}/a.wav", seconds=1.5)
    make_audio("d/noise/n.wav", seconds=1.5)
    with pytest.raises(DatasetError, match=what) as exc:
        scan_folder(tmp_path / "d")
    assert repr(str(tmp_path / "d" / name)) in str(exc.value) and "rename" in str(exc.value)
    with pytest.raises(DatasetError, match=what):  # the check itself, for sets made elsewhere
        check(TrainingSet([name], [LabelledFile(tmp_path / "x.wav", frozenset([name]))],
                          "somewhere"))


def test_annotation_labels_with_a_tab_are_refused(tmp_path, make_audio):
    make_audio("rec/long.wav", seconds=10.0)
    table = tmp_path / "ann.csv"
    table.write_text('file,begin,end,label\nrec/long.wav,1,2,Bird A\n'
                     'rec/long.wav,3,4,"Bird\tB"\n')
    with pytest.raises(DatasetError, match=r"ann.csv line 3: .* a tab"):
        read_annotations(table, audio_root=tmp_path)


# -- item 6: annotation rows that give no window ---------------------------------------------
def test_bad_annotation_rows_are_reported_by_line_and_not_counted(tmp_path, make_audio):
    make_audio("rec/long.wav", seconds=10.0)
    make_audio("rec/other.wav", seconds=10.0)
    table = tmp_path / "ann.csv"
    table.write_text("file,begin,end,label\n"
                     "rec/long.wav,1.0,2.5,Bird A\n"      # 2 good
                     "rec/long.wav,6,9,noise\n"           # 3 good
                     "rec/other.wav,-1,2,Bird A\n"        # 4 negative
                     "rec/other.wav,12,14,Bird A\n"       # 5 past the end
                     "rec/other.wav,5,4,Bird A\n"         # 6 begin >= end
                     "rec/other.wav,nan,2,Bird A\n"       # 7 NaN
                     "rec/other.wav,abc,2,Bird A\n")      # 8 not a number
    ts = read_annotations(table, audio_root=tmp_path)
    assert [(f.path.name, f.begin) for f in ts.files] == [("long.wav", 1.0), ("long.wav", 6.0)]
    assert ts.groups_per_class() == {"Bird A": 1}  # other.wav trains nothing: not counted
    text = ts.describe()
    for line, reason in [(4, "negative"), (5, "past the end of other.wav"),
                         (6, "not after begin"), (7, "finite"), (8, "not numbers")]:
        assert any(f"ann.csv line {line}: " in ln and reason in ln
                   for ln in text.splitlines()), text
    assert "2 files" in text
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("file,begin,end,label\nrec/other.wav,-1,2,A\nrec/other.wav,20,21,A\n")
    with pytest.raises(DatasetError, match=r"no usable annotation rows(.|\n)*line 2: negative"
                                           r"(.|\n)*line 3: begin 20.0 s"):
        read_annotations(only_bad, audio_root=tmp_path)


def test_an_annotation_without_a_window_is_skipped_not_counted(tmp_path):
    """9.5-s file: windows at 0, 3, 6 (the 0.5-s rest is too short); an annotation at
    9.1-9.4 s is inside the file but no window covers it."""
    levels_file(tmp_path / "rec" / "a.wav", [0.1, 0.1, 0.1, 0.1])  # 12 s
    wav = levels_file(tmp_path / "rec" / "b.wav", [0.1, 0.1, 0.1, 0.1])
    import soundfile as sf

    x, sr = sf.read(wav, dtype="float32")
    sf.write(wav, x[: int(9.5 * sr)], sr, subtype="FLOAT")
    table = tmp_path / "ann.csv"
    table.write_text("file,begin,end,label\nrec/a.wav,0,3,Alpha a_A\nrec/b.wav,9.1,9.4,"
                     "Alpha a_A\nrec/a.wav,6,9,noise\n")
    ts = read_annotations(table, audio_root=tmp_path)
    assert ts.groups_per_class() == {"Alpha a_A": 2}  # before reading the audio
    feats = build_features(ts, tmp_path / "store", _audio(), FakeModel(),
                           EngineSettings(workers=1), progress=False)
    assert feats.groups_per_class() == {"Alpha a_A": 1}
    assert any("b.wav" in p and "no 3-s window covers" in r for p, r in feats.skipped)
    with pytest.raises(DatasetError, match=r"that gave windows.*'Alpha a_A' \(1\)"):
        check_folds(feats.groups_per_class(), 2, after_reading=True)


def _audio():
    from edgebird.audio import AudioSettings

    return AudioSettings()


# -- item 7: unreadable files in the fold check ----------------------------------------------
def test_unreadable_files_do_not_count_as_recordings(tmp_path):
    """5 files of class A, 4 of them unreadable: the check on files passed and the one
    readable window 'cross-validated' (0.700) with numpy's 'Mean of empty slice'."""
    from edgebird.synth import write_dataset
    from edgebird.training.classifier import train_from_data

    made = write_dataset(tmp_path / "d", clips_per_class=5, seconds=3.0, seed=0)
    first = sorted(k for k in made if k != "Noise")[0]
    for p in made[first][1:]:
        p.write_bytes(b"RIFF not really a wave file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DatasetError, match=rf"5-fold .* that gave windows .*'{first}' "
                                               r"\(1\).*--folds 0 \(auto\) or 1 \("):
            train_from_data(tmp_path / "d", tmp_path / "out",
                            TrainSettings(head="logreg", folds=5, holdout_species=0,
                                          synthetic_negatives=0),
                            engine=EngineSettings(workers=1), store=tmp_path / "store",
                            progress=False, echo=lambda m: None)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not (tmp_path / "out").exists()


def test_macro_of_unmeasurable_figures_gives_no_numpy_warning():
    y = np.ones((4, 2))  # every window positive: AUROC undefined for every class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        macro = class_metrics(y, np.full((4, 2), 0.7), ["a", "b"], np.full(2, 0.5))[0]
    assert np.isnan(macro["auroc"]) and macro["f1@0.5"] == 1.0


# -- item 12: --folds 1 on one or two recordings per class -----------------------------------
def test_folds_1_with_one_recording_per_class_trains_without_figures():
    f = blobs(n_per=6, classes=3, groups_per=1)
    r = train_classifier(f, TrainSettings(head="logreg", folds=1, holdout_species=0,
                                          synthetic_negatives=0), echo=lambda m: None)
    assert not r.cross_validated and r.overall == [] and r.folds == []
    assert "single recording" in r.summary() and "F1" not in r.summary()
    assert r.final.layers and r.thresholds.tolist() == [0.5] * 3


def test_folds_1_with_two_recordings_per_class_holds_one_out():
    f = blobs(n_per=6, classes=3, groups_per=2)
    r = train_classifier(f, TrainSettings(head="logreg", folds=1, holdout_species=0,
                                          synthetic_negatives=0), echo=lambda m: None)
    assert r.cross_validated and len(r.folds) == 1
    assert r.overall[0]["positives"] > 0
    assert any("threshold 0.5 kept" in n for n in r.notes)


def test_cli_folds_1_suggested_for_one_recording_then_works(tmp_path, capsys):
    """The message suggesting --folds 1 was wrong: --folds 1 failed in scikit-learn. An
    explicit --folds 5 is still refused; the default (auto) trains."""
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "d", clips_per_class=1, seconds=3.0, seed=0)
    args = ["train", str(tmp_path / "d"), "-o", str(tmp_path / "out"), "--head", "logreg",
            "--holdout-species", "0", "--synthetic-negatives", "4", "--store",
            str(tmp_path / "store"), "--quiet"]
    assert main(args + ["--folds", "5"]) == 2
    assert "--folds 0 (auto) or 1" in capsys.readouterr().err
    assert main(args + ["--folds", "1"]) == 0
    out = capsys.readouterr().out
    assert "not cross-validated" in out and "macro F1" not in out
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "## Cross-validation not possible" in report and "macro F1" not in report
    assert (tmp_path / "out" / "CustomClassifier.tflite").is_file()
    assert main(["inspect", str(tmp_path / "out" / "CustomClassifier.tflite")]) == 0


# -- item 14: inspect's threshold warnings ----------------------------------------------------
@pytest.mark.parametrize(("rows", "message"), [
    ("A_a,1.7\nB_b,-0.5\n", r"must be in \[0, 1\] \(classes A_a, B_b\)"),
    ("A_a,abc\nB_b,0.5\n", r"line 2: not a thresholds file \(threshold 'abc' is not a "
                           r"number for class 'A_a'\)"),
])
def test_inspect_warns_about_thresholds_as_analyze_refuses_them(tmp_path, capsys, rows,
                                                                message):
    from edgebird.backbones.birdnet import graph as tflite_graph

    model = tmp_path / "Head.tflite"
    model.write_bytes(tflite_graph.dense_head_model(
        [(np.zeros((1024, 2), np.float32), np.zeros(2, np.float32), False)]))
    (tmp_path / "Head_Labels.txt").write_text("A_a\nB_b\n")
    thr = tmp_path / "Head_Thresholds.csv"
    thr.write_text("Class,Threshold\n" + rows)
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    warning = next(ln for ln in out.splitlines() if "warning:" in ln)
    assert str(thr) in warning and "analyze and the field recorder refuse" in warning
    import re

    assert re.search(message, warning), warning
    assert "threshold 1.70" not in out
