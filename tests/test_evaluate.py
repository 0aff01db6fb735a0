"""``evaluate``: the matching rule's edge cases, metrics against hand-computed values, FP/hour,
the target-precision threshold (read back by the thresholds parser), every table format, the
CLI end to end, bad inputs, and BirdNET on devbirds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel, levels_file

from edgebird.cli import main
from edgebird.core.labels import read_thresholds
from edgebird.core.scores import Detection
from edgebird.core.writers.formats import FORMATS, TableContext
from edgebird.evaluation.evaluate import (
    EvaluateSettings,
    EvaluationError,
    analyze_first,
    evaluate_tables,
)
from edgebird.evaluation.matching import DUPLICATE, FP, TP, match
from edgebird.evaluation.metrics import ClassCurve
from edgebird.evaluation.truth import RecordingIndex

A = "Alpha a_A"


# -- the matching rule -------------------------------------------------------------------------
def test_touching_intervals_do_not_match():
    assert match([(0.0, 3.0, 0.9)], [(3.0, 5.0)], 0.5) == [FP]


def test_overlap_just_under_and_over_the_minimum():
    assert match([(0.0, 3.0, 0.9)], [(2.51, 5.0)], 0.5) == [FP]  # 0.49 s
    assert match([(0.0, 3.0, 0.9)], [(2.49, 5.0)], 0.5) == [TP]  # 0.51 s
    assert match([(0.0, 3.0, 0.9)], [(2.5, 5.0)], 0.5) == [TP]  # exactly 0.5 s


def test_annotation_shorter_than_minimum_matches_when_covered():
    assert match([(0.0, 3.0, 0.9)], [(1.0, 1.2)], 0.5) == [TP]
    assert match([(0.0, 3.0, 0.9)], [(2.9, 3.1)], 0.5) == [FP]  # only half of it covered


def test_one_annotation_two_detections():
    # the higher score takes it, the other is a duplicate (neither true nor false)
    assert match([(0.0, 3.0, 0.6), (3.0, 6.0, 0.8)], [(2.0, 5.0)], 0.5) == [DUPLICATE, TP]


def test_two_annotations_one_detection():
    # the detection takes the annotation it overlaps most; the other is missed
    assert match([(0.0, 3.0, 0.9)], [(0.0, 1.0), (1.0, 3.0)], 0.5) == [TP]
    curve = ClassCurve("x", np.array([0.9]), np.array([TP], np.int8), 2, 1.0)
    c = curve.at(0.5)
    assert (c.tp, c.fp, c.fn, c.recall, c.precision) == (1, 0, 1, 0.5, 1.0)


def test_greedy_by_score_not_by_time():
    dets = [(0.0, 3.0, 0.3), (1.0, 4.0, 0.9)]
    assert match(dets, [(1.0, 3.0)], 0.5) == [DUPLICATE, TP]


def test_bad_minimum_overlap():
    with pytest.raises(ValueError):
        match([], [], 0.0)
    with pytest.raises(ValueError):
        EvaluateSettings(min_overlap=0)


# -- metrics by hand ---------------------------------------------------------------------------
def test_metrics_by_hand():
    # scores 0.9 TP, 0.8 FP, 0.7 TP, 0.6 dup, 0.4 FP; 4 annotations, 2 h
    curve = ClassCurve("x", np.array([0.9, 0.8, 0.7, 0.6, 0.4]),
                       np.array([TP, FP, TP, DUPLICATE, FP], np.int8), 4, 2.0)
    c = curve.at(0.5)
    assert (c.tp, c.fp, c.fn, c.duplicates) == (2, 1, 2, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == 0.5
    assert c.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert c.fp_per_hour == 0.5
    assert curve.at(0.4).fp_per_hour == 1.0
    # AP = 0.25 * 1 + 0.25 * 2/3 (the FPs add no recall)
    assert curve.average_precision() == pytest.approx(0.25 + 0.25 * 2 / 3)
    assert curve.average_precision(0.85) == pytest.approx(0.25)
    # precision 0.9 is reached at 0.9 only; 0.6 at 0.7 (2/3), the lowest such threshold
    assert curve.threshold_for(0.9).threshold == 0.9
    assert curve.threshold_for(0.6).threshold == 0.7
    assert curve.threshold_for(0.6).recall == 0.5
    nothing = curve.at(0.95)
    assert nothing.precision is None and nothing.recall == 0.0 and nothing.f1 == 0.0


def test_no_positives_is_not_zero():
    curve = ClassCurve("x", np.array([0.9]), np.array([FP], np.int8), 0, 1.0)
    c = curve.at(0.5)
    assert c.recall is None and c.f1 is None and c.fn is None
    assert c.precision == 0.0 and c.fp_per_hour == 1.0
    assert curve.average_precision() is None
    assert curve.threshold_for(0.5) is None


def test_recording_index_rule():
    idx = RecordingIndex(["/data/site1/rec", "/data/site2/rec", "/data/other"])
    assert idx.find("/results/other.WAV") == "/data/other"
    assert idx.find("/x/site2/rec.wav") == "/data/site2/rec"
    assert idx.find("rec.flac") == "\0ambiguous"
    assert idx.find("nothing.wav") is None


# -- whole evaluations from generated tables ---------------------------------------------------
def _write_table(folder: Path, audio: str, dets: list[Detection], rtype: str = "table") -> Path:
    fmt = FORMATS[rtype]
    name = Path(audio).stem + fmt.suffix
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fmt.render(dets, TableContext(audio)), encoding="utf-8")
    return path


def _annotations(path: Path, rows: list[tuple[str, float, float, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "begin", "end", "label"])
        w.writerows(rows)
    return path


@pytest.fixture
def case(tmp_path):
    """Two annotated recordings and one known to lack A; hand-countable outcomes."""
    res = tmp_path / "results"
    audio = "/audio"
    d = Detection
    _write_table(res, f"{audio}/r1.wav", [
        d(f"{audio}/r1.wav", 0, 3, A, 0.9),  # TP (ann 1-4)
        d(f"{audio}/r1.wav", 3, 6, A, 0.5),  # duplicate of ann 1-4
        d(f"{audio}/r1.wav", 9, 12, A, 0.7),  # FP
        d(f"{audio}/r1.wav", 0, 3, "Beta b_B", 0.8),  # not annotated class: not evaluated
    ])
    _write_table(res, f"{audio}/r2.wav", [
        d(f"{audio}/r2.wav", 0, 3, A, 0.3),  # TP (ann 0-2), below 0.5
    ])
    _write_table(res, f"{audio}/r3.wav", [
        d(f"{audio}/r3.wav", 0, 3, A, 0.95),  # FP: r3 lacks A
    ])
    ann = _annotations(tmp_path / "ann.csv", [("r1.wav", 1, 4, "Alpha a"),
                                             ("r1.wav", 20, 30, "Alpha a"),
                                             ("r2.wav", 0, 2, "Alpha a")])
    absent = tmp_path / "absent.csv"
    absent.write_text("file,label\nr3.wav,Alpha a\n")
    return res, ann, absent


def test_evaluation_counts(case):
    res, ann, absent = case
    ev = evaluate_tables([res], [ann], EvaluateSettings(min_conf=0.5), [absent])
    curve = ev.curves["Alpha a"]
    c = curve.at(ev.thresholds["Alpha a"])
    assert (c.tp, c.fp, c.fn, c.duplicates) == (1, 2, 2, 1)
    assert ev.not_evaluated == 1
    # durations: r1 30 s (annotation end), r2 3 s (detection end), r3 3 s
    assert curve.hours == pytest.approx(36 / 3600)
    assert c.fp_per_hour == pytest.approx(2 / (36 / 3600))
    assert "extent" in ev.duration_source
    # scores: 0.95 FP, 0.9 TP, 0.7 FP, 0.3 TP; 3 annotations
    assert curve.average_precision() == pytest.approx(1 / 3 * 1 / 2 + 1 / 3 * 2 / 4)


def test_durations_from_audio(case, tmp_path):
    res, ann, absent = case
    for name, seconds in (("r1", 3), ("r2", 2), ("r3", 1)):
        levels_file(tmp_path / "audio" / f"{name}.wav", [0.0] * seconds)
    ev = evaluate_tables([res], [ann], EvaluateSettings(), [absent], audio=tmp_path / "audio")
    assert ev.curves["Alpha a"].hours == pytest.approx(18 / 3600)
    assert "audio files" in ev.duration_source


@pytest.mark.parametrize("rtype", list(FORMATS))
def test_every_format(tmp_path, rtype):
    dets = [Detection("/a/r1.wav", 0, 3, A, 0.9), Detection("/a/r1.wav", 6, 9, A, 0.6)]
    res = tmp_path / "res"
    _write_table(res, "/a/r1.wav", dets, rtype)
    ann = _annotations(tmp_path / "ann.csv", [("r1.wav", 1, 2, "A")])
    c = evaluate_tables([res], [ann]).curves["A"].at(0.5)
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)


def test_combined_table(tmp_path):
    from edgebird.core.writers.combined import combine

    res = tmp_path / "res"
    tables = [(_write_table(res, f"/a/{n}.wav", [Detection(f"/a/{n}.wav", 0, 3, A, 0.9)]),
               30.0) for n in ("r1", "r2")]
    for name, text in combine(FORMATS["table"], tables).items():
        (tmp_path / name).write_text(text)
    combined = tmp_path / FORMATS["table"].combined_name
    ann = _annotations(tmp_path / "ann.csv", [("r1.wav", 0, 2, "A"), ("r2.wav", 5, 8, "A")])
    c = evaluate_tables([combined], [ann]).curves["A"].at(0.5)
    assert (c.tp, c.fp, c.fn) == (1, 1, 1)


def test_raven_annotations(tmp_path):
    res = tmp_path / "res"
    _write_table(res, "/a/r1.wav", [Detection("/a/r1.wav", 0, 3, A, 0.9)])
    raven = tmp_path / "truth.txt"
    raven.write_text("Selection\tView\tBegin Time (s)\tEnd Time (s)\tSpecies\tBegin Path\n"
                     "1\tSpectrogram 1\t0.5\t2.5\tAlpha a\t/a/r1.wav\n")
    assert evaluate_tables([res], [raven]).curves["Alpha a"].at(0.5).tp == 1


def test_missing_recording_counts_as_missed(tmp_path):
    res = tmp_path / "res"
    _write_table(res, "/a/r1.wav", [])
    ann = _annotations(tmp_path / "ann.csv", [("r1.wav", 0, 2, "A"), ("r9.wav", 0, 2, "A")])
    ev = evaluate_tables([res], [ann])
    assert ev.missing and ev.missing[0].endswith("r9")
    assert ev.curves["A"].at(0.5).fn == 2


# -- the command -------------------------------------------------------------------------------
def test_cli_end_to_end(case, tmp_path, capsys):
    res, ann, absent = case
    out, thr = tmp_path / "out", tmp_path / "new_Thresholds.csv"
    code = main(["evaluate", str(res), "-a", str(ann), "--absent", str(absent), "-o", str(out),
                 "--min-conf", "0.5", "--target-precision", "0.5", "--write-thresholds",
                 str(thr)])
    assert code == 0
    for name in ("EVALUATION.md", "evaluation.csv", "evaluation.json", "pr_curve.png",
                 "threshold_curve.png"):
        assert (out / name).is_file()
    rows = list(csv.DictReader(open(out / "evaluation.csv")))
    assert [r["class"] for r in rows] == ["Alpha a", "(macro)"]
    assert rows[0]["tp"] == "1" and rows[0]["fp"] == "2"
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["classes"][0]["fn"] == 2 and len(doc["sweep"]) == 19
    # precision 0.5 first reached at 0.3 (2 TP of 4 scored, the duplicate ignored)
    assert read_thresholds(thr) == {"Alpha a": 0.3}
    assert "extent" in (out / "EVALUATION.md").read_text()


def test_cli_thresholds_file_and_no_positives(case, tmp_path):
    res, ann, absent = case
    given = tmp_path / "m_Thresholds.csv"
    given.write_text("Class,Threshold\nAlpha a_A,0.8\n")
    absent.write_text("file,label\nr3.wav,Alpha a\nr3.wav,Delta d_D\n")
    out = tmp_path / "out"
    assert main(["evaluate", str(res), "-a", str(ann), "--absent", str(absent), "-o", str(out),
                 "--thresholds", str(given)]) == 0
    rows = {r["class"]: r for r in csv.DictReader(open(out / "evaluation.csv"))}
    assert rows["Alpha a"]["threshold"] == "0.8" and rows["Alpha a"]["tp"] == "1"
    assert rows["Delta d_D"]["recall"] == "" and rows["Delta d_D"]["threshold"] == "0.25"
    md = (out / "EVALUATION.md").read_text()
    assert "no positives" in md
    assert not (tmp_path / "out" / "x_Thresholds.csv").exists()  # opt-in only


def test_cli_bad_inputs(case, tmp_path, capsys):
    res, ann, _ = case
    out = str(tmp_path / "out")
    assert main(["evaluate", str(res), "-a", str(tmp_path / "none.csv"), "-o", out]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing"), "-a", str(ann), "-o", out]) == 1
    assert main(["evaluate", str(res), "-a", str(ann), "-o", out, "--min-overlap", "0"]) == 2
    assert "--min-overlap" in capsys.readouterr().err
    assert main(["evaluate", str(res), "-a", str(ann), "-o", out,
                 "--target-precision", "2"]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("file,begin,end,label\nr1.wav,x,2,A\n")
    assert main(["evaluate", str(res), "-a", str(bad), "-o", out]) == 1
    assert "line 2" in capsys.readouterr().err
    broken = res / "r4.BirdNET.results.csv"
    broken.write_text(FORMATS["csv"].header + "\n1,2\n")
    assert main(["evaluate", str(res), "-a", str(ann), "-o", out]) == 1  # reported, rest kept
    assert "r4" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(res), "-o", out])  # no annotations
    assert e.value.code == 2


def test_analyze_first_with_a_model(tmp_path):
    audio = tmp_path / "audio"
    levels_file(audio / "r1.wav", [0.1, 0.0, 0.1])  # A scores 0.88 in windows 0 and 2
    ann = _annotations(tmp_path / "ann.csv", [("audio/r1.wav", 0.5, 2.5, "Alpha a")])
    results, failed = analyze_first([audio], tmp_path / "out", None, progress=False,
                                     model=FakeModel(), echo=lambda m: None)
    assert not failed
    ev = evaluate_tables([results], [ann], EvaluateSettings(min_conf=0.5), audio=audio)
    c = ev.curves["Alpha a"].at(0.5)
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)
    assert ev.curves["Alpha a"].hours == pytest.approx(9 / 3600)


def test_evaluation_error_without_classes(tmp_path):
    res = tmp_path / "res"
    _write_table(res, "/a/r1.wav", [])
    ann = _annotations(tmp_path / "ann.csv", [("r1.wav", 0, 2, "noise")])
    with pytest.raises(EvaluationError, match="no class"):
        evaluate_tables([res], [ann])


# -- devbirds ----------------------------------------------------------------------------------
@pytest.mark.integration
def test_devbirds_birdnet(tmp_path, devbirds):
    """BirdNET on two recordings of each of two species, annotated whole-file from the folder
    names: it finds each species somewhere (recall > 0) and the report says so."""
    from edgebird.audio import probe

    audio, rows = tmp_path / "audio", []
    for species in ("Junco_hyemalis", "Passer_domesticus"):
        files = sorted(p for p in (devbirds / species).iterdir()
                       if p.suffix.lower() in (".mp3", ".wav", ".flac", ".ogg"))[:2]
        for f in files:
            link = audio / species / f.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
            rows.append((f"audio/{species}/{f.name}", 0.0, probe(f).duration, species))
    ann = _annotations(tmp_path / "ann.csv", rows)
    out = tmp_path / "out"
    code = main(["evaluate", str(audio), "--analyze", "-a", str(ann), "-o", str(out), "-q",
                 "--min-conf", "0.3"])
    assert code == 0
    result = {r["class"]: r for r in csv.DictReader(open(out / "evaluation.csv"))}
    for species in ("Junco_hyemalis", "Passer_domesticus"):
        assert float(result[species]["recall"]) > 0
        assert float(result[species]["precision"]) > 0.5
    assert float(result["(macro)"]["ap"]) > 0


def test_label_map_same_scientific_name_other_common_name():
    """Annotations from another list name the species differently (issue 20's loop found it:
    devbirds' "Myrtle Warbler" is BirdNET's "Yellow-rumped Warbler"); the scientific name
    decides, and a full label still wins over a half."""
    from edgebird.evaluation.truth import LabelMap

    labels = LabelMap(["Setophaga coronata_Myrtle Warbler", "Passer domesticus_House Sparrow",
                       "Junco hyemalis_Dark-eyed Junco"])
    myrtle = "Setophaga coronata_Myrtle Warbler"
    assert labels("Setophaga coronata_Yellow-rumped Warbler") == myrtle
    assert labels("Setophaga_coronata") == myrtle
    assert labels("Passer domesticus_House Sparrow") == "Passer domesticus_House Sparrow"
    assert labels("Setophaga townsendi_Townsend's Warbler") is None
