"""The loop in a real browser (issue 20): Evaluate on generated tables and annotations, Search
on a small store of BirdNET embeddings of synthetic songs, a result card's spectrogram and
player, Right writing the clip into ``Class/Positive/`` (Wrong then moving it), and the Review
tab writing calibrated thresholds into the chosen classifier. Uses the browser test's server and
Chromium fixtures (skipped with their reason when Chromium is missing). EDGEBIRD_SCREENSHOTS=DIR
saves a picture of each step."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf
from test_gui_browser import _shoot, _tab, _wait, browser, server  # noqa: F401 - fixtures
from test_gui_loop import _classifier, _reviewed, evaluation_tables

from edgebird.core.labels import read_thresholds

pytestmark = pytest.mark.integration


def _type(driver, elem_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = _wait(lambda: driver.find_element(By.CSS_SELECTOR,
                                            f"#{elem_id} textarea, #{elem_id} input"),
                what=f"the {elem_id} box")
    box.clear()
    box.send_keys(text)


def _open(driver, name: str) -> None:
    tab = _wait(lambda: _tab(driver, name), what=f"the {name} tab")
    tab.click()
    _wait(lambda: tab.get_attribute("aria-selected") == "true", what=f"{name} shown")
    time.sleep(0.5)


def _value(driver, elem_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{elem_id} textarea").get_attribute("value")


def test_evaluate_then_search_and_mark(server, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    from edgebird import synth
    from edgebird.pipeline.embed import embed_files
    from edgebird.pipeline.engine import EngineSettings

    res, ann = evaluation_tables(tmp_path)  # Evaluate: the unit test's tables
    browser.get(server)
    _open(browser, "Evaluate")
    _type(browser, "ev-results", str(res))
    _type(browser, "ev-annotations", str(ann))
    browser.find_element(By.ID, "ev-run").click()
    report = _wait(lambda: (browser.find_element(By.ID, "ev-report").text
                            if "Alpha a" in browser.find_element(By.ID, "ev-report").text
                            else None), timeout=60, what="the evaluation report")
    assert "precision" in report.lower()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#ev-pr img"), what="the PR plot")
    _shoot(browser, "evaluate")

    # Search: a store of three synthetic recordings, the query one of them
    rng = np.random.default_rng(0)
    songs = list(synth.SONGS)[:2]
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for name, song in (("a1", songs[0]), ("a2", songs[0]), ("b1", songs[1])):
        sf.write(audio_dir / f"{name}.wav",
                 synth.clip(song, rng, seconds=9.0, snr_db=30.0, calls=6), synth.SR)
    store = tmp_path / "store"
    embed_files([audio_dir], store, engine=EngineSettings(workers=1), progress=False,
                echo=lambda m: None)
    train = tmp_path / "train"
    _open(browser, "Search")
    browser.find_element(By.ID, "search-run").click()  # nothing chosen yet: says what to do
    _wait(lambda: "choose an embedding store" in browser.find_element(By.TAG_NAME, "body").text,
          what="the message asking for a store")
    _shoot(browser, "search_empty")
    _type(browser, "search-store", str(store))
    _type(browser, "search-training", str(train))
    _type(browser, "search-label", "Song A")
    upload = browser.find_element(By.CSS_SELECTOR, "#search-query input[type='file']")
    upload.send_keys(str(audio_dir / "a1.wav"))
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#search-query audio, "
                                        "#search-query .waveform-container"),
          what="the uploaded query")
    time.sleep(1.0)
    browser.find_element(By.ID, "search-run").click()
    summary = _wait(lambda: _value(browser, "search-summary") or None, timeout=120,
                    what="the search summary")
    assert "results" in summary, summary
    cards = _wait(lambda: [c for c in browser.find_elements(By.CSS_SELECTOR, ".search-card")
                           if c.is_displayed()], what="the result cards")
    first = cards[0]
    assert "a2.wav" in first.text and "#1" in first.text, first.text
    _wait(lambda: first.find_elements(By.CSS_SELECTOR, ".search-spectrogram img"),
          what="the first result's spectrogram")
    _wait(lambda: first.find_elements(By.CSS_SELECTOR, "audio, .waveform-container"),
          what="the first result's player")
    browser.set_window_size(1400, 2000)
    browser.execute_script("arguments[0].scrollIntoView()", first)
    time.sleep(0.5)
    _shoot(browser, "search")
    browser.find_element(By.ID, "search-right-0").click()
    _wait(lambda: "marked right" in browser.find_element(By.ID, "search-status-0").text,
          what="the first card's verdict")
    written = list((train / "Song A" / "Positive").glob("*.wav"))
    assert len(written) == 1 and "a2" in written[0].name
    browser.find_element(By.ID, "search-wrong-0").click()
    _wait(lambda: "marked wrong" in browser.find_element(By.ID, "search-status-0").text,
          what="the changed verdict")
    assert not list((train / "Song A" / "Positive").glob("*.wav"))
    assert len(list((train / "Song A" / "Negative").glob("*.wav"))) == 1
    _shoot(browser, "search_marked")
    browser.set_window_size(1400, 1100)

    # Review: the calibrated thresholds go into the custom classifier chosen above
    review = tmp_path / "review"
    _reviewed(review, "Alpha", [0.55, 0.7, 0.8, 0.85, 0.9, 0.95, 0.45], [0.1, 0.2, 0.3, 0.6, 0.4])
    model = _classifier(tmp_path, ["Alpha a_Alpha", "Beta b_Beta"],
                        {"Alpha a_Alpha": 0.42, "Beta b_Beta": 0.37})
    browser.execute_script("window.scrollTo(0, 0)")
    next(e for e in browser.find_elements(By.CSS_SELECTOR, "label")
         if e.text.strip() == "Custom classifier").click()
    box = _wait(lambda: next(e for e in browser.find_elements(By.CSS_SELECTOR, "textarea")
                             if e.get_attribute("placeholder") == "/path/to/Model.tflite"
                             and e.is_displayed()), what="the classifier box")
    box.send_keys(str(model))
    _open(browser, "Review")
    _type(browser, "review-folder", str(review))
    button = browser.find_element(By.ID, "use-calibrated")
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()
    words = _wait(lambda: _value(browser, "calibrated-written") or None,
                  what="the thresholds written")
    assert words.startswith("wrote Mine_Thresholds.csv for precision 0.9: Alpha"), words
    assert read_thresholds(tmp_path / "Mine_Thresholds.trained.csv")["Alpha a_Alpha"] == 0.42
    assert read_thresholds(tmp_path / "Mine_Thresholds.csv")["Alpha a_Alpha"] != 0.42
    _shoot(browser, "review")
