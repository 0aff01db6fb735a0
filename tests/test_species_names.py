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
