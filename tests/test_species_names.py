"""Common names in another language from BirdNET's translated label files (a fake folder)."""

from __future__ import annotations

import sys

from edgebird import species_names as sn


def _folder(tmp_path):
    folder = tmp_path / "labels" / "V2.4"
    folder.mkdir(parents=True)
    (folder / sn.PATTERN.format("zh")).write_text(
        "\ufeffTurdus merula_乌鸫\n\nParus major_大山雀\n", encoding="utf-8")
    (folder / sn.PATTERN.format("de")).write_text("Turdus merula_Amsel\n", encoding="utf-8")
    (folder / "unrelated.txt").write_text("x\n")
    return folder


def test_names_in_the_chosen_language_fall_back_to_english(tmp_path):
    folder = _folder(tmp_path)
    assert sn.languages(folder) == ["de", "zh"]
    zh = sn.names_for("zh", folder)
    assert zh == {"Turdus merula": "乌鸫", "Parus major": "大山雀"}
    assert sn.display_name("Turdus merula_Eurasian Blackbird", zh) == "乌鸫"
    # not in the translation: the English common name; no '_' at all: the label itself
    assert sn.display_name("Corvus corax_Common Raven", zh) == "Common Raven"
    assert sn.display_name("Engine", zh) == "Engine"
    assert sn.names_for("de", folder)["Turdus merula"] == "Amsel"
    # English, an unknown language, or no translations installed: nothing to map (English)
    assert sn.names_for("en", folder) == {} and sn.names_for("xx", folder) == {}
    assert sn.names_for("zh", tmp_path / "missing") == {}
    assert sn.languages(tmp_path / "missing") == []


def test_finding_the_package_does_not_import_it(tmp_path, monkeypatch):
    """``find_spec`` locates birdnet_analyzer's data without running its (TensorFlow) code."""
    pkg = tmp_path / "site" / sn.PACKAGE
    (pkg / "labels" / "V2.4").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (pkg / "labels" / "V2.4" / sn.PATTERN.format("zh")).write_text("Parus major_大山雀\n",
                                                                     encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, sn.PACKAGE, raising=False)
    import importlib

    importlib.invalidate_caches()
    assert sn.translations_dir() == pkg / "labels" / "V2.4"
    assert sn.names_for("zh") == {"Parus major": "大山雀"}
    assert sn.PACKAGE not in sys.modules


def test_no_package_means_no_translations(monkeypatch):
    monkeypatch.setattr(sn.importlib.util, "find_spec", lambda name: None)
    assert sn.translations_dir() is None and sn.languages() == [] and sn.names_for("zh") == {}


def test_analyze_locale_translates_the_tables_common_names(tmp_path, monkeypatch):
    """``--locale``: the common-name columns in that language; the Raven Species Code keeps the
    English label, so the table still reads back by label; default tables are unchanged."""
    import pytest
    from fakes import FakeModel, levels_file

    from edgebird.audio import AudioSettings
    from edgebird.core.writers.readers import read_results
    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files, make_plan
    from edgebird.pipeline.engine import EngineSettings

    folder = tmp_path / "tr"
    folder.mkdir()
    (folder / sn.PATTERN.format("zh")).write_text("Alpha a_阿尔法\n", encoding="utf-8")
    monkeypatch.setattr(sn, "translations_dir", lambda: folder)
    levels_file(tmp_path / "in" / "a.wav", [0.1, 0.1, 0.0, 0.1])

    def run(name, **kw):
        out = tmp_path / name
        analyze_files([tmp_path / "in"], out, AnalyzeSettings(rtypes=("table", "csv"), **kw),
                      AudioSettings(), EngineSettings(workers=1), model=FakeModel(),
                      progress=False, echo=lambda m: None)
        return out

    en, zh = run("en"), run("zh", locale="zh")
    raven_en = (en / "a.BirdNET.selection.table.txt").read_text(encoding="utf-8")
    raven_zh = (zh / "a.BirdNET.selection.table.txt").read_text(encoding="utf-8")
    cells = [line.split("\t") for line in raven_zh.splitlines()[1:]]
    assert {c[7]: c[8] for c in cells} == {"阿尔法": "Alpha a_A", "B": "Beta b_B"}
    assert "阿尔法" not in raven_en and raven_en.replace("\tA\t", "\t阿尔法\t") == raven_zh
    assert [d.label for d in read_results(zh / "a.BirdNET.selection.table.txt")[1]] == \
        [d.label for d in read_results(en / "a.BirdNET.selection.table.txt")[1]]
    csv_zh = (zh / "a.BirdNET.results.csv").read_text(encoding="utf-8")
    assert "Alpha a,阿尔法," in csv_zh and "Beta b,B," in csv_zh
    with pytest.raises(ValueError, match="translations here are zh"):
        make_plan(AnalyzeSettings(locale="xx"), AudioSettings(), FakeModel())
    monkeypatch.setattr(sn, "translations_dir", lambda: None)
    with pytest.raises(ValueError, match="pip install --no-deps birdnet-analyzer"):
        make_plan(AnalyzeSettings(locale="zh"), AudioSettings(), FakeModel())
