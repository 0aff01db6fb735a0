"""The Species and Settings tabs' handlers: a list for a place and week, saved for --slist;
preferences kept in a JSON file in a temporary config folder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gradio")

from edgebird.gui import species_tab as st  # noqa: E402
from edgebird.gui.handlers import UserError  # noqa: E402

from edgebird import species_names as sn  # noqa: E402
from edgebird.species import read_species_list  # noqa: E402


def test_species_list_made_shown_and_saved(tmp_path, monkeypatch):
    rows, summary = st.species_table(52.5, 13.4, 20, 0.03, "en")
    assert summary.startswith(f"{len(rows)} species at 52.5, 13.4, week 20")
    sci = [r[0] for r in rows]
    assert "Turdus merula" in sci and not any(s.startswith("Spheniscus") for s in sci)
    scores = [r[2] for r in rows]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.03
    blackbird = rows[sci.index("Turdus merula")]
    assert blackbird[1] == "Eurasian Blackbird"

    out = tmp_path / "berlin.txt"
    msg = st.save_species(str(out), 52.5, 13.4, 20, 0.03)
    good, unknown = read_species_list(out)
    assert unknown == [] and len(good) == len(rows) and f"{len(rows)} species saved" in msg
    st.save_species(str(tmp_path), 52.5, 13.4, 20, 0.03)  # a folder: species_list.txt inside
    assert (tmp_path / "species_list.txt").read_text() == out.read_text()

    with pytest.raises(UserError, match="folder not found"):
        st.save_species(str(tmp_path / "no" / "x.txt"), 52.5, 13.4, 20, 0.03)
    with pytest.raises(UserError, match="choose a file"):
        st.save_species(" ", 52.5, 13.4, 20, 0.03)
    with pytest.raises(UserError):
        st.species_table(95, 13.4, 20, 0.03, "en")


def test_species_names_in_chinese_or_a_hint(tmp_path, monkeypatch):
    folder = tmp_path / "tr"
    folder.mkdir()
    (folder / sn.PATTERN.format("zh")).write_text("Turdus merula_乌鸫\n", encoding="utf-8")
    monkeypatch.setattr(sn, "translations_dir", lambda: folder)
    rows, summary = st.species_table(52.5, 13.4, 20, 0.03, "zh")
    names = {r[0]: r[1] for r in rows}
    assert names["Turdus merula"] == "乌鸫" and "pip install" not in summary
    assert st.resolve_language("auto", "zh-CN,zh;q=0.9") == "zh"
    assert st.resolve_language("auto", "en-US,en") == "en"
    assert st.resolve_language("auto", "fr-FR") == "en"  # no French translation here
    monkeypatch.setattr(sn, "translations_dir", lambda: None)
    rows, summary = st.species_table(52.5, 13.4, 20, 0.03, "zh")
    assert {r[0]: r[1] for r in rows}["Turdus merula"] == "Eurasian Blackbird"
    assert sn.INSTALL_HINT in summary


def test_settings_are_saved_and_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIRD_CONFIG_DIR", str(tmp_path / "cfg"))
    assert st.load_prefs() == st.Prefs()  # nothing saved yet: defaults
    msg = st.save_prefs("zh", str(tmp_path), "dark")
    path = tmp_path / "cfg" / "gui.json"
    assert str(path) in msg
    assert json.loads(path.read_text()) == {"language": "zh", "output_dir": str(tmp_path),
                                            "theme": "dark"}
    assert st.load_prefs() == st.Prefs("zh", str(tmp_path), "dark")
    assert [p.name for p in path.parent.iterdir()] == ["gui.json"]  # no temp file left
    with pytest.raises(UserError, match="theme"):
        st.save_prefs("zh", "", "purple")
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="not a folder"):
        st.save_prefs("zh", str(tmp_path / "f"), "light")
    path.write_text("{broken")
    assert st.load_prefs() == st.Prefs()
    path.write_text(json.dumps({"theme": "neon", "language": 3, "other": "x"}))
    assert st.load_prefs() == st.Prefs()


def test_single_file_rows_name_species_in_the_chosen_language(tmp_path, monkeypatch,
                                                              make_audio):
    from edgebird.gui import handlers as h

    path = make_audio("rec.wav", seconds=10.0, sr=44100)
    session = h.Session(tmp_path / "work")
    english = h.analyze_single(session, str(path), h.DetectionSettings(min_conf=0.01))
    assert english.rows
    sci = english.rows[0][2]
    folder = tmp_path / "tr"
    folder.mkdir()
    (folder / sn.PATTERN.format("zh")).write_text(f"{sci}_测试名\n", encoding="utf-8")
    monkeypatch.setattr(sn, "translations_dir", lambda: folder)
    zh = h.analyze_single(session, str(path), h.DetectionSettings(min_conf=0.01), "zh")
    assert [r[2] for r in zh.rows] == [r[2] for r in english.rows]
    assert {r[3] for r in zh.rows if r[2] == sci} == {"测试名"}
    assert all(r[3] == e[3] for r, e in zip(zh.rows, english.rows, strict=True)
               if r[2] != sci)
    table = next(p for p in zh.tables if p.name.endswith(".selection.table.txt"))
    assert "测试名" not in table.read_text(encoding="utf-8")  # tables keep English labels


def test_a_saved_language_whose_translations_are_gone_still_opens(monkeypatch):
    """gui.json says zh, BirdNET's translations were uninstalled since: the dropdown keeps zh
    as a choice (Gradio refuses a value not among its choices, and Make the list failed)."""
    monkeypatch.setattr(sn, "languages", lambda: [])
    choices = st.language_choices("zh")
    assert choices == [st.AUTO, sn.ENGLISH, "zh"]
    assert st.language_choices("en") == [st.AUTO, sn.ENGLISH]
    assert "zh" in st.language_box(st.Prefs(language="zh"))["choices"]
