"""``segments``: reads back every format ``analyze`` writes (per file and combined), picks
clips as documented, cuts them with context and BNA's names."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fakes import SR, FakeModel, levels_file

from edgebird.audio import AudioSettings
from edgebird.core.scores import Detection
from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
from edgebird.pipeline.engine import EngineSettings
from edgebird.pipeline.segments import SegmentSettings, choose, extract_segments

TYPES = ("table", "audacity", "csv", "r", "kaleidoscope")


@pytest.fixture
def analyzed(tmp_path):
    """Two recordings analyzed into every format (per file and combined)."""
    audio = tmp_path / "audio"
    levels_file(audio / "site1" / "a.wav", [0.1, 0.0, 0.1])
    levels_file(audio / "b.wav", [0.0, 0.1])

    def analyze(out, combine=False):
        analyze_files([audio], out, AnalyzeSettings(rtypes=TYPES, combine=combine,
                                                     min_conf=0.6),
                      AudioSettings(), EngineSettings(workers=1), model=FakeModel(),
                      progress=False, echo=lambda m: None)
        return out

    return audio, analyze


EXPECTED = {"0.881_1_a_0.00s_3.00s.wav", "0.881_2_a_6.00s_9.00s.wav",
            "0.881_1_b_3.00s_6.00s.wav"}


@pytest.mark.parametrize("rtype", TYPES)
def test_reads_every_per_file_format(tmp_path, analyzed, rtype):
    audio, analyze = analyzed
    res = analyze(tmp_path / "res")
    for other in set(TYPES) - {rtype}:  # leave only this format in the results folder
        for p in res.rglob("*" + {"table": ".selection.table.txt", "audacity": ".results.txt",
                                  "csv": ".results.csv", "r": ".results.r.csv",
                                  "kaleidoscope": ".results.kaleidoscope.csv"}[other]):
            p.unlink()
    summary = extract_segments(audio, res, tmp_path / "clips", echo=lambda m: None)
    assert not summary.failed, summary.failed
    assert {p.name for p in summary.written} == EXPECTED
    assert {p.parent.name for p in summary.written} == {"A"}


@pytest.mark.parametrize("rtype", ["table", "csv", "r", "kaleidoscope"])
def test_reads_every_combined_table(tmp_path, analyzed, rtype):
    audio, analyze = analyzed
    res = analyze(tmp_path / "res", combine=True)
    name = {"table": "BirdNET_SelectionTable.txt", "csv": "BirdNET_CombinedTable.csv",
            "r": "BirdNET_RTable.csv", "kaleidoscope": "BirdNET_Kaleidoscope.csv"}[rtype]
    summary = extract_segments(None, res / name, tmp_path / "clips", echo=lambda m: None)
    assert {p.name for p in summary.written} == EXPECTED
    # a results folder holding a combined table uses it (BNA's rule)
    summary = extract_segments(audio, res, tmp_path / "clips2", echo=lambda m: None)
    assert {p.name for p in summary.written} == EXPECTED


def test_clip_has_context_and_is_48k_pcm16(tmp_path, analyzed):
    audio, analyze = analyzed
    res = analyze(tmp_path / "res")
    summary = extract_segments(audio, res, tmp_path / "clips",
                               SegmentSettings(seg_length=5.0), echo=lambda m: None)
    clips = {p.name: p for p in summary.written}
    a0 = sf.info(clips["0.881_1_a_0.00s_3.00s.wav"])
    assert (a0.samplerate, a0.subtype) == (SR, "PCM_16")
    assert a0.frames == 4 * SR  # 3 s + 1 s after (no room before 0)
    x, _ = sf.read(clips["0.881_2_a_6.00s_9.00s.wav"])
    assert len(x) == 4 * SR  # 1 s before (silent), 3 s, no room after the file's end
    assert abs(x[:SR].mean()) < 1e-3 and abs(x[SR:].mean() - 0.1) < 1e-3


def test_moved_recordings_are_found_by_relative_name(tmp_path, analyzed):
    audio, analyze = analyzed
    res = analyze(tmp_path / "res")
    moved = tmp_path / "moved"
    audio.rename(moved)
    summary = extract_segments(moved, res, tmp_path / "clips", echo=lambda m: None)
    assert {p.name for p in summary.written} == EXPECTED
    summary = extract_segments(tmp_path / "nowhere", res, tmp_path / "c2", echo=lambda m: None)
    assert summary.written == [] and summary.failed  # reported, not a crash


def _dets(n: int) -> list:
    conf = np.linspace(0.25, 1.0, n)
    return [(f"f{i}", Detection("", float(i), float(i) + 3, "S s_Sp", float(c)))
            for i, c in enumerate(conf)]


def test_collection_modes():
    found = _dets(200)
    s = SegmentSettings(max_segments=10, collection_mode="confidence")
    got = [d.confidence for _, d in choose(found, s)]
    assert got == sorted(got, reverse=True)[:10] and min(got) > 0.95
    s = SegmentSettings(max_segments=10, collection_mode="balanced", n_bins=5)
    got = np.array([d.confidence for _, d in choose(found, s)])
    counts, _ = np.histogram(got, bins=np.linspace(0.25, 1.0, 6))
    assert counts.tolist() == [2, 2, 2, 2, 2]  # every bin, the top one included
    s = SegmentSettings(max_segments=10, seed=3)
    first = choose(found, s)
    assert len(first) == 10 and first == choose(found, s)  # reproducible
    assert first != choose(found, SegmentSettings(max_segments=10, seed=4))


def test_min_max_conf(tmp_path, analyzed):
    audio, analyze = analyzed
    res = analyze(tmp_path / "res")
    summary = extract_segments(audio, res, tmp_path / "clips",
                               SegmentSettings(min_conf=0.9), echo=lambda m: None)
    assert summary.written == []
    with pytest.raises(ValueError):
        SegmentSettings(min_conf=0.8, max_conf=0.5)
