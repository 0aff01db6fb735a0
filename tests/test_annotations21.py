"""Issue 21 item 5: soundscape annotations. Overlapping annotations give one multi-label row
per window; the unannotated time of a fully annotated recording trains as background; the
minimum-overlap rule at its edges. Every file is made in the test."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeModel, levels_file

from edgebird.audio import AudioSettings
from edgebird.pipeline.engine import EngineSettings
from edgebird.training.dataset import DatasetError, LabelledFile, read_annotations
from edgebird.training.features import (
    MAX_UNANNOTATED_PER_RECORDING,
    MIN_ANNOTATION_OVERLAP,
    UNANNOTATED_TOLERANCE,
    annotation_windows,
    build_features,
)

A, B = "Alpha a_A", "Beta b_B"


def _ann(begin: float, end: float, *labels: str) -> LabelledFile:
    return LabelledFile("r.wav", frozenset(labels), begin=begin, end=end)


def _windows(annotations, n=4, unannotated=False, cap=MAX_UNANNOTATED_PER_RECORDING):
    """Windows at 0, 3, 6, ... (3 s each) of one recording."""
    return annotation_windows(np.arange(n) * 3.0, 3.0, annotations, [A, B], unannotated, cap)


# -- the overlap rule at its edges ------------------------------------------------------------
def test_a_window_covering_exactly_the_minimum_belongs():
    # 2.0-4.5: window 0 covers 1.0 s (exactly the minimum), window 3 covers 1.5 s
    aw = _windows([_ann(3.0 - MIN_ANNOTATION_OVERLAP, 4.5, A)])
    assert aw.index.tolist() == [0, 1] and aw.y[:, 0].tolist() == [1, 1]


def test_a_window_just_below_the_minimum_is_neither_positive_nor_negative():
    # 2.01-4.5: window 0 covers 0.99 s: not the call's, but it holds part of it
    aw = _windows([_ann(3.0 - MIN_ANNOTATION_OVERLAP + 0.01, 4.5, A)], unannotated=True)
    assert aw.index.tolist() == [1, 2, 3]
    assert aw.kind.tolist() == ["positive", "unannotated", "unannotated"]


def test_a_call_shorter_than_the_minimum_belongs_to_the_window_holding_all_of_it():
    inside = _windows([_ann(3.2, 3.6, A)])  # 0.4 s, all inside window 3
    assert inside.index.tolist() == [1] and not inside.unmatched
    split = _windows([_ann(2.8, 3.2, A)], unannotated=True)  # 0.2 s in each of two windows
    assert split.unmatched and split.kind.tolist() == ["unannotated", "unannotated"]
    assert split.index.tolist() == [2, 3]  # the two windows holding halves are left out


def test_touching_a_box_edge_by_the_tolerance_still_counts_as_unannotated():
    # 0-3.1: window 3 overlaps it by 0.1 s (the tolerance): unannotated; by 0.11 s: neither
    at = _windows([_ann(0.0, 3.0 + UNANNOTATED_TOLERANCE, A)], n=2, unannotated=True)
    assert at.kind.tolist() == ["positive", "unannotated"]
    past = _windows([_ann(0.0, 3.01 + UNANNOTATED_TOLERANCE, A)], n=2, unannotated=True)
    assert past.kind.tolist() == ["positive"]


def test_overlapping_annotations_give_one_multi_label_row_per_window():
    aw = _windows([_ann(0, 6, A), _ann(3, 9, B), _ann(4, 5, A)])  # a third, nested one
    assert aw.index.tolist() == [0, 1, 2]  # no window twice
    assert aw.y.tolist() == [[1, 0], [1, 1], [0, 1]]


def test_noise_annotations_are_background_and_lose_to_a_species():
    aw = _windows([_ann(0, 6), _ann(3, 6, B)])  # noise 0-6 with B calling in 3-6
    assert aw.kind.tolist() == ["background", "positive"] and aw.y.tolist() == [[0, 0], [0, 1]]


def test_unannotated_windows_are_capped_evenly_and_deterministically():
    aw = _windows([_ann(0, 3, A)], n=201, unannotated=True, cap=10)
    free = aw.index[aw.kind == "unannotated"]
    assert len(free) == 10 and free[0] == 1 and free[-1] == 200
    assert np.all(np.diff(free) >= 20)  # spread over the recording, not its first minute
    again = _windows([_ann(0, 3, A)], n=201, unannotated=True, cap=10)
    assert again.index.tolist() == aw.index.tolist()


# -- the table and build_features ---------------------------------------------------------------
def _recordings(tmp_path):
    """Two 12-s recordings (windows 0, 3, 6, 9); A at 0-6 and B at 3-9 in each."""
    for i, name in enumerate(("r1.wav", "r2.wav")):  # different content: two store entries
        levels_file(tmp_path / name, [0.1 + i / 100, 0.2, 0.3, 0.0])


def _table(tmp_path, complete: dict[str, str] | None = None, sep=","):
    rows = [("r1.wav", 0, 6, A), ("r1.wav", 3, 9, B), ("r2.wav", 0, 6, A), ("r2.wav", 3, 9, B)]
    head = ["file", "begin", "end", "label"] + (["complete"] if complete is not None else [])
    lines = [sep.join(head)]
    for f, b, e, lab in rows:
        cells = [f, str(b), str(e), lab] + ([complete.get(f, "")] if complete is not None else [])
        lines.append(sep.join(cells))
    path = tmp_path / "ann.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _features(tmp_path, table, mode="auto"):
    ts = read_annotations(table, audio_root=tmp_path)
    return build_features(ts, tmp_path / "store", AudioSettings(), FakeModel(),
                          EngineSettings(workers=1), progress=False,
                          unannotated_negatives=mode)


def test_shared_windows_are_multi_label_and_appear_once(tmp_path):
    _recordings(tmp_path)
    feats = _features(tmp_path, _table(tmp_path))
    assert len(feats) == 6  # 3 windows per recording; window 9 is unannotated and not used
    for rec in ("r1.wav", "r2.wav"):
        mine = np.char.endswith(feats.files.astype(str), rec)
        assert feats.starts[mine].tolist() == [0, 3, 6]
        assert feats.y[mine].tolist() == [[1, 0], [1, 1], [0, 1]]
    assert set(feats.strata()) == {A, B, f"{A}+{B}"}
    assert "2 multi-label window(s)" in feats.annotation_summary()


def test_auto_uses_the_unannotated_time_of_recordings_marked_complete_only(tmp_path):
    _recordings(tmp_path)
    feats = _features(tmp_path, _table(tmp_path, {"r1.wav": "yes"}))
    neg = feats.kind == "unannotated"
    assert neg.sum() == 1 and feats.files[neg][0].endswith("r1.wav")
    assert feats.starts[neg].tolist() == [9] and not feats.y[neg].any()
    assert "1 unannotated-time window(s) as background from 1 recording(s)" in \
        feats.annotation_summary()


@pytest.mark.parametrize(("mode", "expected"), [("yes", 2), ("no", 0), ("auto", 0)])
def test_yes_and_no_override_the_table(tmp_path, mode, expected):
    _recordings(tmp_path)
    marks = {"r1.wav": "yes"} if mode == "no" else None  # no: even a complete recording
    feats = _features(tmp_path, _table(tmp_path, marks), mode)
    assert (feats.kind == "unannotated").sum() == expected


def test_a_recording_without_calls_is_marked_by_a_noise_row(tmp_path):
    _recordings(tmp_path)
    levels_file(tmp_path / "quiet.wav", [0.0, 0.01, 0.02])
    table = _table(tmp_path, {})
    table.write_text(table.read_text() + "quiet.wav,0,3,noise,yes\n")
    feats = _features(tmp_path, table)
    quiet = np.char.endswith(feats.files.astype(str), "quiet.wav")
    assert feats.kind[quiet].tolist() == ["background", "unannotated", "unannotated"]
    assert not feats.y[quiet].any()


def test_raven_complete_column_and_bad_values(tmp_path):
    _recordings(tmp_path)
    raven = tmp_path / "sel.txt"
    raven.write_text("Selection\tBegin File\tBegin Time (s)\tEnd Time (s)\tSpecies\t"
                     "Fully annotated\n1\tr1.wav\t0\t6\tAlpha a_A\tTRUE\n"
                     "2\tr2.wav\t0\t6\tAlpha a_A\t\n3\tr2.wav\t6\t9\tnoise\tno\n")
    ts = read_annotations(raven, audio_root=tmp_path)
    assert {f.path.name: f.complete for f in ts.files} == {"r1.wav": True, "r2.wav": False}
    bad = _table(tmp_path, {"r1.wav": "maybe"})
    with pytest.raises(DatasetError, match=r"line 2: the 'complete' column says 'maybe'"):
        read_annotations(bad, audio_root=tmp_path)


def test_unknown_mode_is_refused(tmp_path):
    _recordings(tmp_path)
    with pytest.raises(ValueError, match="unannotated_negatives"):
        _features(tmp_path, _table(tmp_path), "sometimes")


# -- end to end: cross-validation on multi-label rows -----------------------------------------
def test_train_cross_validates_on_soundscapes_with_overlapping_species(tmp_path, capsys):
    """Four 15-s soundscapes: whistler 0-6 s, triller 3-9 s (both at 3-6 s), then noise;
    marked complete, so 9-15 s trains as background. BirdNET is real; --head logreg."""
    from edgebird.cli import main
    from edgebird.synth import SR, clip

    w, t = "Synthetic whistler_Whistler", "Synthetic triller_Triller"
    rng = np.random.default_rng(0)
    lines = ["file,begin,end,label,complete"]
    for i in range(4):
        x = clip(None, rng, 15.0)
        x[: 6 * SR] += clip(w, rng, 6.0, calls=3)
        x[3 * SR: 9 * SR] += clip(t, rng, 6.0, calls=3)
        sf.write(tmp_path / f"s{i}.wav", np.clip(x, -1, 1), SR, subtype="PCM_16")
        lines += [f"s{i}.wav,0,6,{w},yes", f"s{i}.wav,3,9,{t},yes"]
    (tmp_path / "ann.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", str(tmp_path), "--annotations", str(tmp_path / "ann.csv"), "-o",
                 str(tmp_path / "out"), "--head", "logreg", "--folds", "2",
                 "--holdout-species", "0", "--synthetic-negatives", "4", "--store",
                 str(tmp_path / "store"), "--quiet"]) == 0
    said = capsys.readouterr().out
    summary = ("4 multi-label window(s) (two or more species at once); 8 unannotated-time "
               "window(s) as background from 4 recording(s)")
    assert summary in said
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert summary in report and "2 classes, 2 fold(s)" in report
    counts = (tmp_path / "out" / "CustomClassifier_sample_counts.csv").read_text()
    assert "(unannotated),8" in counts
