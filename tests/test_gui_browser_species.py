"""The Species and Settings tabs in a real browser (Debian's Chromium + chromedriver; skipped
with the reason when missing): make a species list and save it; save the settings into a
temporary config folder. EDGEBIRD_SCREENSHOTS=DIR saves species.png and settings.png."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from test_gui_browser import _free_port, _shoot, _tab, _wait, browser  # noqa: F401

from edgebird.species_names import INSTALL_HINT, names_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    pytest.importorskip("gradio")
    port = _free_port()
    work = tmp_path_factory.mktemp("gui")
    env = {**os.environ, "EDGEBIRD_CONFIG_DIR": str(work / "config")}
    # a saved setting the page starts from: species names in Chinese
    (work / "config").mkdir()
    (work / "config" / "gui.json").write_text(json.dumps({"language": "zh"}))
    proc = subprocess.Popen([sys.executable, "-m", "edgebird", "gui", "--port", str(port),
                             "--no-browser", "--workdir", str(work / "session")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"the GUI did not start:\n{proc.stdout.read()[-3000:]}")
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the GUI did not open its port within 90 s")
    yield f"http://127.0.0.1:{port}/", work
    proc.terminate()
    proc.wait(timeout=20)


def _type(el, text):
    """Replace a box's text as a user does (select all, type): ``clear()`` on Gradio's number
    boxes lets the old value come back as the first keys arrive ("552" from "52.5")."""
    from selenium.webdriver.common.keys import Keys

    el.send_keys(Keys.CONTROL, "a")
    el.send_keys(text)
    el.send_keys(Keys.TAB)


def test_make_a_species_list(served, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, work = served
    browser.get(url)
    _wait(lambda: _tab(browser, "Species"), what="the Species tab").click()
    inputs = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "input[type='number']"),
                   what="the number boxes")
    lat, lon, week = [e for e in inputs if e.is_displayed()][:3]
    _type(lat, "52.5")
    _type(lon, "13.4")
    _type(week, "20")
    browser.find_element(By.ID, "make-species").click()
    summary = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#species-summary textarea")
                    .get_attribute("value") or None, timeout=60, what="the list's summary")
    count = int(summary.split()[0])
    assert count > 20 and "52.5, 13.4, week 20" in summary, summary
    table = _wait(lambda: browser.find_element(By.ID, "species-table").get_attribute(
        "textContent") if "Turdus merula" in browser.find_element(By.ID, "species-table")
        .get_attribute("textContent") else None, what="the blackbird in the table")
    if names_for("zh"):  # BirdNET's translations installed: the saved language is used
        assert "乌鸫" in table and "Eurasian Blackbird" not in table
    else:
        assert "Eurasian Blackbird" in table and INSTALL_HINT in summary
    target = tmp_path / "berlin.txt"
    _type(browser.find_element(By.CSS_SELECTOR, "#species-path textarea, #species-path input"),
          str(target))
    browser.find_element(By.ID, "save-species").click()
    saved = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#species-saved textarea")
                  .get_attribute("value") or None, what="the saved message")
    assert f"{count} species saved" in saved, saved
    lines = [ln for ln in target.read_text().splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == count and "Turdus merula_Eurasian Blackbird" in lines
    browser.execute_script("window.scrollTo(0, 0)")
    _shoot(browser, "species")

    _tab(browser, "Settings").click()
    out = _wait(lambda: browser.find_element(
        By.CSS_SELECTOR, "#settings-output textarea, #settings-output input"),
        what="the output folder box")
    _type(out, str(tmp_path))
    browser.find_element(By.ID, "save-settings").click()
    status = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#settings-status textarea")
                   .get_attribute("value") or None, what="the settings saved")
    assert "gui.json" in status, status
    prefs = json.loads((work / "config" / "gui.json").read_text())
    assert prefs == {"language": "zh", "output_dir": str(tmp_path), "theme": "light"}
    _shoot(browser, "settings")
    dark = _wait(lambda: [e for e in browser.find_elements(
        By.CSS_SELECTOR, "#settings-theme label") if e.text.strip() == "dark"][0],
        what="the dark theme choice")
    dark.click()
    _wait(lambda: browser.execute_script("return document.body.classList.contains('dark')"),
          what="the dark theme applied")
    browser.find_element(By.ID, "save-settings").click()
    _wait(lambda: json.loads((work / "config" / "gui.json").read_text())["theme"] == "dark",
          what="the dark theme saved")
    browser.refresh()  # a new page load starts from the saved theme
    _wait(lambda: _tab(browser, "Species"), what="the page again")
    _wait(lambda: browser.execute_script("return document.body.classList.contains('dark')"),
          what="the saved dark theme applied on load")
    _tab(browser, "Species").click()
    _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#species-path textarea, "
                                       "#species-path input").get_attribute("value")
          == str(tmp_path / "species_list.txt"), what="the save box from the saved folder")
