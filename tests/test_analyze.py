"""``analyze``: settings change results as documented (a fake model with known logits),
writing, skipping, combining, bad input. Real-model runs are in test_analyze_real.py."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import SR, FakeModel, levels_file

from edgebird.audio import AudioSettings
from edgebird.core.writers.readers import read_results
from edgebird.pipeline.analyze import (
    AnalyzeSettings,
    analyze_file,
    analyze_files,
    make_plan,
    parse_rtypes,
    process_file,
    result_paths,
    skip_existing,
)
from edgebird.pipeline.engine import EngineSettings

INLINE = EngineSettings(workers=1)


def rows(path: Path) -> list[tuple[float, float, str, float]]:
    return [(d.start, d.end, d.label.split("_")[1], round(d.confidence, 4))
            for d in read_results(path)[1]]


def run(tmp_path, name="out", files=None, engine=INLINE, audio=AudioSettings(), **kw):
    files = files or [levels_file(tmp_path / "in" / "a.wav", [0.1, 0.1, 0.0, 0.1])]
    kw.setdefault("rtypes", ("csv",))
    s = AnalyzeSettings(**kw)
    summary = analyze_files([tmp_path / "in"], tmp_path / name, s, audio, engine,
                            model=FakeModel(), progress=False, echo=lambda m: None)
    return summary, tmp_path / name


def test_default_min_conf_keeps_scores_from_a_quarter(tmp_path):
    summary, out = run(tmp_path)
    got = rows(out / "a.BirdNET.results.csv")
    assert got == [(0.0, 3.0, "A", 0.8808), (0.0, 3.0, "B", 0.5), (3.0, 6.0, "A", 0.8808),
                   (3.0, 6.0, "B", 0.5), (6.0, 9.0, "B", 0.5), (9.0, 12.0, "A", 0.8808),
                   (9.0, 12.0, "B", 0.5)]
    assert summary.analyzed == 1 and summary.windows == 4 and not summary.failed
    assert summary.detections == {"Alpha a_A": 3, "Beta b_B": 4}


def test_min_conf_sensitivity_top_n_merge_and_overlap(tmp_path):
    _, out = run(tmp_path, "hi", min_conf=0.6)
    assert [r[2] for r in rows(out / "a.BirdNET.results.csv")] == ["A", "A", "A"]
    # S = 1.25 shifts every logit by +2.5: the silent window's A (-2 -> 0.5) passes 0.6
    _, out = run(tmp_path, "sens", min_conf=0.6, sensitivity=1.25)
    got = rows(out / "a.BirdNET.results.csv")
    assert (6.0, 9.0, "A", 0.6225) in got and (0.0, 3.0, "B", 0.9241) in got
    # top-N bypasses min_conf: exactly one label per window, the best
    _, out = run(tmp_path, "top", min_conf=0.99, top_n=1)
    assert [r[2] for r in rows(out / "a.BirdNET.results.csv")] == ["A", "A", "B", "A"]
    # merging: the two touching A windows become one 0-6 s detection
    _, out = run(tmp_path, "merge", min_conf=0.6, merge_consecutive=2)
    assert rows(out / "a.BirdNET.results.csv") == [(0.0, 6.0, "A", 0.8808),
                                                   (9.0, 12.0, "A", 0.8808)]
    # overlap 1.5 s: windows every 1.5 s; those straddling a silent stretch (4.5, 7.5) and
    # the last, 1.5 s long and zero-padded (10.5), average 0.05 and score 0.5
    _, out = run(tmp_path, "ovl", min_conf=0.25, audio=AudioSettings(overlap=1.5))
    a = [r for r in rows(out / "a.BirdNET.results.csv") if r[2] == "A"]
    assert [(r[0], r[3]) for r in a] == [(0.0, 0.8808), (1.5, 0.8808), (3.0, 0.8808),
                                         (4.5, 0.5), (7.5, 0.5), (9.0, 0.8808), (10.5, 0.5)]
    assert a[-1][1] == 12.0  # end = min(start + 3, file length)


def test_species_list_filters_and_reports_unknown(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# my site\nBeta b_B\nNotA bird_Nope\n")
    warnings = []
    plan = make_plan(AnalyzeSettings(species_list=str(lst)), AudioSettings(), FakeModel(),
                     warn=warnings.append)
    assert plan.allowed == {"Beta b_B"}
    assert "NotA bird_Nope" in warnings[0]
    _, out = run(tmp_path, species_list=str(lst))
    assert {r[2] for r in rows(out / "a.BirdNET.results.csv")} == {"B"}
    empty = tmp_path / "empty.txt"
    empty.write_text("Nobody_None\n")
    with pytest.raises(ValueError, match="none of the model"):
        make_plan(AnalyzeSettings(species_list=str(empty)), AudioSettings(), FakeModel(),
                  warn=lambda m: None)


def test_species_codes_fill_the_raven_code_column(tmp_path):
    codes = tmp_path / "codes.json"  # BNA's file maps both ways; only label -> code is used
    codes.write_text('{"Alpha a_A": "alpha1", "alpha1": "Alpha a_A"}')
    _, out = run(tmp_path, "json", rtypes=("table",), species_codes=str(codes))
    table = (out / "a.BirdNET.selection.table.txt").read_text().splitlines()
    cells = [line.split("\t") for line in table[1:]]
    assert {c[7]: c[8] for c in cells} == {"A": "alpha1", "B": "Beta b_B"}  # no code: label
    text = tmp_path / "codes.txt"
    text.write_text("# label, code\nBeta b_B,beta2\n")
    _, out = run(tmp_path, "txt", rtypes=("table",), species_codes=str(text))
    table = (out / "a.BirdNET.selection.table.txt").read_text().splitlines()
    assert {line.split("\t")[8] for line in table[1:]} == {"Alpha a_A", "beta2"}
    for bad, message in (("[1, 2]", "JSON object"), ("{", "not valid JSON")):
        codes.write_text(bad)
        with pytest.raises(ValueError, match=message):
            make_plan(AnalyzeSettings(species_codes=str(codes)), AudioSettings(), FakeModel())
    text.write_text("just-a-label\n")
    with pytest.raises(ValueError, match="line 1"):
        make_plan(AnalyzeSettings(species_codes=str(text)), AudioSettings(), FakeModel())


def test_per_class_thresholds_unless_min_conf_given(tmp_path):
    thr = {"Alpha a_A": 0.9, "Beta b_B": 0.4, "Gamma c_C": 0.5}
    plan = make_plan(AnalyzeSettings(), AudioSettings(), FakeModel(), thr)
    assert plan.thresholds.tolist() == [0.9, 0.4, 0.5]
    plan = make_plan(AnalyzeSettings(min_conf=0.3), AudioSettings(), FakeModel(), thr)
    assert plan.thresholds.tolist() == [0.3, 0.3, 0.3]


def test_settings_are_checked():
    assert parse_rtypes(["raven,csv", "r", "table"]) == ("table", "csv", "r")
    for bad in (dict(rtypes=("pdf",)), dict(sensitivity=2.0), dict(min_conf=1.5),
                dict(top_n=0), dict(merge_consecutive=0), dict(additional_columns=("x",))):
        with pytest.raises(ValueError):
            AnalyzeSettings(**bad)


def test_every_type_mirrors_the_tree_and_combines(tmp_path):
    levels_file(tmp_path / "in" / "site1" / "a.wav", [0.1, 0.0])
    levels_file(tmp_path / "in" / "site2" / "b.wav", [0.0, 0.1, 0.1])
    levels_file(tmp_path / "in" / "quiet.wav", [0.0, 0.0])
    types = ("table", "audacity", "csv", "r", "kaleidoscope")
    summary, out = run(tmp_path, files=[None], rtypes=types, combine=True, min_conf=0.6)
    for rel in ("site1/a.wav", "site2/b.wav", "quiet.wav"):
        for p in result_paths(out, rel, types).values():
            assert p.is_file(), p
    combined = (out / "BirdNET_SelectionTable.txt").read_text().splitlines()
    # quiet.wav (6 s) comes first in the tree order, then site1/a (6 s), then site2/b
    assert [ln.split("\t")[3] for ln in combined[1:]] == ["6.0", "15.0", "18.0"]
    assert (out / "BirdNET_SelectionTable.list.txt").read_text().splitlines() == [
        str(tmp_path / "in" / r) for r in ("quiet.wav", "site1/a.wav", "site2/b.wav")]
    assert len((out / "BirdNET_CombinedTable.csv").read_text().splitlines()) == 4
    assert len((out / "BirdNET_RTable.csv").read_text().splitlines()) == 4
    assert len((out / "BirdNET_Kaleidoscope.csv").read_text().splitlines()) == 4
    assert (out / "BirdNET_analysis_params.csv").is_file()
    assert "3 analyzed" in (out / "analysis_summary.txt").read_text()


def test_skip_existing_and_redo(tmp_path):
    run(tmp_path)
    table = tmp_path / "out" / "a.BirdNET.results.csv"
    table.write_text(table.read_text() + "marker\n")
    summary, _ = run(tmp_path)
    assert summary.skipped == 1 and summary.analyzed == 0
    assert table.read_text().endswith("marker\n")
    summary, _ = run(tmp_path, skip_existing=False)
    assert summary.analyzed == 1 and "marker" not in table.read_text()
    # a second result type missing means the file is analyzed again
    summary, _ = run(tmp_path, rtypes=("csv", "audacity"))
    assert summary.analyzed == 1


def test_two_workers_write_the_same_bytes(tmp_path):
    files = [levels_file(tmp_path / "in" / f"f{i}.wav", [0.1 * (i % 2), 0.0, 0.1] * (i + 1))
             for i in range(5)]
    _, one = run(tmp_path, "one", files=files, rtypes=("table", "csv"), combine=True)
    _, two = run(tmp_path, "two", files=files, rtypes=("table", "csv"), combine=True,
                 engine=EngineSettings(workers=2, chunk_windows=4))
    names = sorted(p.name for p in one.iterdir() if "BirdNET" in p.name)
    assert names == sorted(p.name for p in two.iterdir() if "BirdNET" in p.name)
    for n in names:
        if n != "BirdNET_analysis_params.csv":
            assert (one / n).read_bytes() == (two / n).read_bytes(), n


def test_analyze_file_matches_the_batch(tmp_path):
    path = levels_file(tmp_path / "in" / "a.wav", [0.1, 0.0, 0.1, 0.1, 0.0])
    plan = make_plan(AnalyzeSettings(min_conf=0.6, merge_consecutive=3), AudioSettings(),
                     FakeModel())
    result = analyze_file(path, plan, FakeModel(), chunk_windows=2)
    _, out = run(tmp_path, files=[path], min_conf=0.6, merge_consecutive=3)
    batch = [(d.start, d.end, d.label) for d in read_results(out / "a.BirdNET.results.csv")[1]]
    assert [(d.start, d.end, d.label) for d in result.detections] == batch
    assert batch == [(0.0, 3.0, "Alpha a_A"), (6.0, 12.0, "Alpha a_A")]


def test_the_per_file_function_and_the_batch_give_the_same_outcomes(tmp_path):
    """``process_file`` (what a cluster maps) writes the batch's bytes and outcome; a second
    call is the skip check's outcome, a bad file a failed one: one outcome stream."""
    path = levels_file(tmp_path / "in" / "a.wav", [0.1, 0.0, 0.1, 0.1, 0.0])
    types = ("table", "csv", "r")
    settings = AnalyzeSettings(min_conf=0.6, rtypes=types)
    plan = make_plan(settings, AudioSettings(), FakeModel())
    summary, out = run(tmp_path, files=[path], min_conf=0.6, rtypes=types)
    one = process_file(path, "a.wav", tmp_path / "one", plan, FakeModel())
    assert (one.status, one.windows, one.detections) == ("done", summary.windows, 3)
    for rtype, p in result_paths(out, "a.wav", types).items():
        assert (tmp_path / "one" / p.name).read_bytes() == p.read_bytes(), rtype
    again = process_file(path, "a.wav", tmp_path / "one", plan, FakeModel())
    assert (again.status, again.reason) == ("skipped", "results exist")
    assert skip_existing("a.wav", str(path), tmp_path / "one", plan) == again
    (tmp_path / "bad.wav").write_text("not audio")
    bad = process_file(tmp_path / "bad.wav", "bad.wav", tmp_path / "one", plan, FakeModel())
    assert bad.status == "failed" and bad.reason


def test_every_outcome_is_booked_and_notified(tmp_path):
    levels_file(tmp_path / "in" / "a.wav", [0.1, 0.1])
    (tmp_path / "in" / "bad.wav").write_text("not audio")
    heard = []
    s = AnalyzeSettings(rtypes=("csv",))
    for _ in range(2):
        summary = analyze_files([tmp_path / "in"], tmp_path / "out", s, AudioSettings(), INLINE,
                                model=FakeModel(), progress=False, echo=lambda m: None,
                                notify=lambda rel, status, detail: heard.append((rel, status)))
    assert summary.skipped == 1 and len(summary.failed) == 1
    assert sorted(heard) == sorted([("a.wav", "queued"), ("a.wav", "done"), ("bad.wav", "failed"),
                                    ("a.wav", "skipped"), ("bad.wav", "failed")])


def test_bad_files_are_listed_and_the_batch_goes_on(tmp_path):
    d = tmp_path / "in"
    levels_file(d / "good1.wav", [0.1, 0.1])
    levels_file(d / "silent.wav", [0.0, 0.0, 0.0])
    sf.write(d / "one_second.wav", np.full(SR, 0.1, np.float32), SR, subtype="FLOAT")
    sf.write(d / "too_short.wav", np.zeros(SR // 4, np.float32), SR)
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("this is not audio\n" * 50)
    good = levels_file(tmp_path / "g.wav", [0.1] * 4).read_bytes()
    (d / "truncated.wav").write_bytes(good[:len(good) // 3][:60])
    (d / "notes.txt").write_text("not audio and not an audio extension: ignored")
    unreadable = levels_file(d / "locked.wav", [0.1])
    os.chmod(unreadable, 0)
    summary, out = run(tmp_path, rtypes=("table", "csv"), combine=True, min_conf=0.6)
    failed = {Path(p).name: reason for p, reason in summary.failed}
    expected_bad = {"too_short.wav", "empty.wav", "text.wav", "truncated.wav"}
    if os.access(unreadable, os.R_OK):  # root reads anything
        expected_ok = {"good1.wav", "silent.wav", "one_second.wav", "locked.wav"}
    else:
        expected_bad.add("locked.wav")
        expected_ok = {"good1.wav", "silent.wav", "one_second.wav"}
    assert set(failed) == expected_bad, failed
    assert all(len(r) > 10 for r in failed.values())
    for name in expected_ok:
        assert (out / name.replace(".wav", ".BirdNET.selection.table.txt")).is_file(), name
    for name in expected_bad:
        assert not list(out.glob(name.replace(".wav", "*"))), name
    assert not [p for p in out.rglob("*") if ".part" in p.name or p.name.startswith(".tmp")]
    log = (out / "error_log.txt").read_text()
    assert all(n in log for n in expected_bad)
    nocall = (out / "silent.BirdNET.selection.table.txt").read_text().splitlines()
    assert len(nocall) == 2 and "nocall" in nocall[1]
