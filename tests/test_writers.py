"""Golden tests for the per-file writers, written from BirdNET-Analyzer 2.4's formats
(docs: peers.md §1.6), not from the code's own output."""

from __future__ import annotations

import pytest

from edgebird.core.scores import Detection
from edgebird.core.writers import audacity, bna_time, csv_table, kaleidoscope, raven, write

PATH = "/data/site1/rec.wav"
DETS = [
    Detection(PATH, 0.0, 3.0, "Turdus merula_Eurasian Blackbird", 0.91234),
    Detection(PATH, 4.5, 5.43, "Parus major_Great Tit", 0.5),
]


def test_times_print_like_bna():
    assert [bna_time(t) for t in (0, 3.0, 4.5, 5.4299999, 12.345)] == [
        "0.0", "3.0", "4.5", "5.43", "12.35"]


def test_raven():
    assert raven.render(DETS, PATH, native_rate=44100) == (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tCommon Name\tSpecies Code\tConfidence\tBegin Path\tFile Offset (s)\n"
        "1\tSpectrogram 1\t1\t0.0\t3.0\t0\t15000\tEurasian Blackbird\t"
        "Turdus merula_Eurasian Blackbird\t0.9123\t/data/site1/rec.wav\t0.0\n"
        "2\tSpectrogram 1\t1\t4.5\t5.43\t0\t15000\tGreat Tit\tParus major_Great Tit\t0.5000\t"
        "/data/site1/rec.wav\t4.5\n")


def test_raven_band_and_codes_and_nocall():
    text = raven.render(DETS[:1], PATH, native_rate=22050, fmin=500, fmax=12000,
                        codes={"Turdus merula_Eurasian Blackbird": "eurbla"})
    assert "\t500\t11025\tEurasian Blackbird\teurbla\t" in text
    empty = raven.render([], PATH, native_rate=48000)
    assert empty.splitlines()[1] == ("1\tSpectrogram 1\t1\t0\t3\t0\t15000\tnocall\tnocall\t"
                                     "1.0\t/data/site1/rec.wav\t0")


def test_audacity():
    assert audacity.render(DETS) == (
        "0.0\t3.0\tTurdus merula, Eurasian Blackbird\t0.9123\n"
        "4.5\t5.43\tParus major, Great Tit\t0.5000\n")


def test_csv_with_and_without_additional_columns():
    assert csv_table.render(DETS, PATH) == (
        "Start (s),End (s),Scientific name,Common name,Confidence,File\n"
        "0.0,3.0,Turdus merula,Eurasian Blackbird,0.9123,/data/site1/rec.wav\n"
        "4.5,5.43,Parus major,Great Tit,0.5000,/data/site1/rec.wav\n")
    text = csv_table.render(DETS[:1], PATH, {"sensitivity": 1.0, "lat": 52.5})
    assert text == ("Start (s),End (s),Scientific name,Common name,Confidence,File,lat,"
                    "sensitivity\n"
                    "0.0,3.0,Turdus merula,Eurasian Blackbird,0.9123,/data/site1/rec.wav,"
                    "52.5,1.0\n")
    with pytest.raises(ValueError, match="unknown additional columns: colour"):
        csv_table.render(DETS, PATH, {"colour": 1})


def test_kaleidoscope():
    assert kaleidoscope.render(DETS, PATH, lat=52.5, lon=13.4, week=20) == (
        "INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,confidence,lat,"
        "lon,week,overlap,sensitivity\n"
        "/data,site1,rec.wav,0.0,3.0,Turdus merula,Eurasian Blackbird,0.9123,52.5000,"
        "13.4000,20,0.0,1.0\n"
        "/data,site1,rec.wav,4.5,0.9299999999999997,Parus major,Great Tit,0.5000,52.5000,"
        "13.4000,20,0.0,1.0\n")


def test_write_is_atomic_and_utf8(tmp_path):
    p = write(tmp_path / "sub" / "x.txt", "Amsel ü\n")
    assert p.read_bytes() == "Amsel ü\n".encode()
    assert not list(tmp_path.rglob("*.tmp"))
