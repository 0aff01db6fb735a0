"""R table, combined tables and readers: golden text written from BirdNET-Analyzer's formats
(peers.md §1.6 and BNA 1.x's R format), then every format read back."""

from __future__ import annotations

import pytest

from edgebird.core.scores import Detection
from edgebird.core.writers import audacity, combined, csv_table, kaleidoscope, r_table, raven, write
from edgebird.core.writers.formats import FORMATS, TableContext, combined_names, get_format
from edgebird.core.writers.readers import detect_rtype, read_results

A, B = "/data/site1/a.wav", "/data/site2/b.wav"
DETS_A = [Detection(A, 0.0, 3.0, "Turdus merula_Eurasian Blackbird", 0.91234),
          Detection(A, 4.5, 5.43, "Parus major_Great Tit", 0.5)]
DETS_B = [Detection(B, 3.0, 6.0, "Parus major_Great Tit", 0.75)]

HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
          "High Freq (Hz)\tCommon Name\tSpecies Code\tConfidence\tBegin Path\tFile Offset (s)\n")


def test_r_table():
    text = r_table.render(DETS_A[:1], A, lat=52.5, lon=13.4, week=20, overlap=0.5,
                          sensitivity=1.25, min_conf=0.1, species_list="list.txt",
                          model="BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite")
    assert text == (
        "filepath,start,end,scientific_name,common_name,confidence,lat,lon,week,overlap,"
        "sensitivity,min_conf,species_list,model\n"
        "/data/site1/a.wav,0.0,3.0,Turdus merula,Eurasian Blackbird,0.9123,52.5000,13.4000,20,"
        "0.5,1.25,0.1,list.txt,BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite\n")


def test_combined_raven_shifts_renumbers_and_drops_nocall(tmp_path):
    ta = write(tmp_path / "a.txt", raven.render(DETS_A, A, 48000))
    tn = write(tmp_path / "n.txt", raven.render([], "/data/n.wav", 48000))
    tb = write(tmp_path / "b.txt", raven.render(DETS_B, B, 22050))
    table, listing = combined.combine_raven([(ta, 10.5), (tn, 60.0), (tb, 20.0)])
    assert table == HEADER + (
        "1\tSpectrogram 1\t1\t0.0\t3.0\t0\t15000\tEurasian Blackbird\t"
        "Turdus merula_Eurasian Blackbird\t0.9123\t/data/site1/a.wav\t0.0\n"
        "2\tSpectrogram 1\t1\t4.5\t5.43\t0\t15000\tGreat Tit\tParus major_Great Tit\t0.5000\t"
        "/data/site1/a.wav\t4.5\n"
        "3\tSpectrogram 1\t1\t73.5\t76.5\t0\t11025\tGreat Tit\tParus major_Great Tit\t0.7500\t"
        "/data/site2/b.wav\t3.0\n")
    assert listing == "/data/site1/a.wav\n/data/n.wav\n/data/site2/b.wav\n"


def test_combined_csv_keeps_one_header_with_extra_columns(tmp_path):
    extra = {"lat": 1.5, "model": "m.tflite"}
    pa = write(tmp_path / "a.csv", csv_table.render(DETS_A, A, extra))
    pe = write(tmp_path / "e.csv", csv_table.render([], "/x.wav", extra))
    pb = write(tmp_path / "b.csv", csv_table.render(DETS_B, B, extra))
    text = combined.concatenate([pe, pa, pb], csv_table.HEADER + "\n")
    assert text == (
        "Start (s),End (s),Scientific name,Common name,Confidence,File,lat,model\n"
        "0.0,3.0,Turdus merula,Eurasian Blackbird,0.9123,/data/site1/a.wav,1.5,m.tflite\n"
        "4.5,5.43,Parus major,Great Tit,0.5000,/data/site1/a.wav,1.5,m.tflite\n"
        "3.0,6.0,Parus major,Great Tit,0.7500,/data/site2/b.wav,1.5,m.tflite\n")
    assert combined.concatenate([], "H\n") == "H\n"


def _key(d: Detection):
    return (d.start, d.end, d.label, round(d.confidence, 4))


@pytest.mark.parametrize("rtype", list(FORMATS))
def test_every_format_reads_back(tmp_path, rtype):
    context = TableContext(A, model="m", additional_columns=("model",))
    text = get_format(rtype).render(DETS_A, context)
    got_type, dets = read_results(write(tmp_path / "t", text))
    assert got_type == rtype
    assert [_key(d) for d in dets] == [_key(d) for d in DETS_A]
    if rtype != "audacity":
        assert {d.file for d in dets} == {A}


def test_the_format_table_is_what_the_writers_write():
    """One table: every format's render(detections, context) is its writer's text, starts with
    its header, is named by its suffix and is told apart by that header."""
    c = TableContext(A, native_rate=22050, fmin=500, fmax=12000, lat=52.5, lon=13.4, week=20,
                     overlap=0.5, sensitivity=1.25, min_conf=0.1, species_list="l.txt",
                     model="m.tflite", codes={"Parus major_Great Tit": "PARMAJ"},
                     additional_columns=("week", "lat"))
    direct = {
        "table": raven.render(DETS_A, A, 22050, 500, 12000, {"Parus major_Great Tit": "PARMAJ"}),
        "csv": csv_table.render(DETS_A, A, {"lat": 52.5, "week": 20}),
        "kaleidoscope": kaleidoscope.render(DETS_A, A, 52.5, 13.4, 20, 0.5, 1.25),
        "r": r_table.render(DETS_A, A, 52.5, 13.4, 20, 0.5, 1.25, 0.1, "l.txt", "m.tflite"),
        "audacity": audacity.render(DETS_A)}
    assert list(FORMATS) == ["table", "csv", "kaleidoscope", "r", "audacity"]
    for name, fmt in FORMATS.items():
        text = fmt.render(DETS_A, c)
        assert text == direct[name], name
        assert text.startswith(fmt.header)
        assert fmt.suffix.startswith(".BirdNET.") and fmt.kind in fmt.suffix
        assert detect_rtype(text.splitlines()[0]) == name
    assert [get_format(n).name for n in ("raven", "Selection", " table ", "r")] == [
        "table", "table", "table", "r"]
    with pytest.raises(ValueError, match="unknown result type 'xml'"):
        get_format("xml")
    assert combined_names() == ("BirdNET_SelectionTable.txt", "BirdNET_CombinedTable.csv",
                                "BirdNET_Kaleidoscope.csv", "BirdNET_RTable.csv")


def test_combine_by_format(tmp_path):
    """``combined.combine`` gives each format's run-wide files: Raven with its audio list."""
    raven_fmt, csv_fmt = get_format("table"), get_format("csv")
    ta = write(tmp_path / "a.txt", raven.render(DETS_A, A, 48000))
    tb = write(tmp_path / "b.txt", raven.render(DETS_B, B, 48000))
    out = combined.combine(raven_fmt, [(ta, 10.0), (tb, 20.0)])
    assert list(out) == ["BirdNET_SelectionTable.txt", "BirdNET_SelectionTable.list.txt"]
    assert out["BirdNET_SelectionTable.list.txt"] == f"{A}\n{B}\n"
    assert combined.combine(csv_fmt, []) == {"BirdNET_CombinedTable.csv": csv_table.HEADER + "\n"}


def test_combined_raven_reads_back_file_offsets(tmp_path):
    ta = write(tmp_path / "a.txt", raven.render(DETS_A, A, 48000))
    tb = write(tmp_path / "b.txt", raven.render(DETS_B, B, 48000))
    table, _ = combined.combine_raven([(ta, 10.0), (tb, 20.0)])
    _, dets = read_results(write(tmp_path / "c.txt", table))
    assert [(d.file, d.start, d.end) for d in dets] == [(A, 0.0, 3.0), (A, 4.5, 5.43),
                                                        (B, 3.0, 6.0)]


def test_reader_copes_with_commas_in_paths_and_skips_nocall(tmp_path):
    odd = str(tmp_path / "site, north" / "a,b.wav")
    (tmp_path / "site, north").mkdir()
    (tmp_path / "site, north" / "a,b.wav").write_bytes(b"")
    _, dets = read_results(write(tmp_path / "c.csv", csv_table.render(DETS_A, odd)))
    assert {d.file for d in dets} == {odd}
    _, dets = read_results(write(tmp_path / "k.csv", kaleidoscope.render(DETS_A, odd)))
    assert {d.file for d in dets} == {odd}
    _, dets = read_results(write(tmp_path / "n.txt", raven.render([], A, 48000)))
    assert dets == []
    assert detect_rtype("") == "audacity"


def test_reader_reports_the_bad_line(tmp_path):
    bad = write(tmp_path / "bad.csv", csv_table.HEADER + "\n0.0,3.0,X,Y,not-a-number,/a.wav\n")
    with pytest.raises(ValueError, match="line 2"):
        read_results(bad)
