"""The Review tab in a real browser (Debian's Chromium; skipped with the reason when missing):
load a clips folder, review with the keyboard (R right, U undo, W wrong), reach the end.
EDGEBIRD_SCREENSHOTS=DIR saves review_clip.png."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from test_gui_browser import _shoot, _tab, _wait, browser, server  # noqa: F401

pytestmark = pytest.mark.integration


def test_review_with_the_keyboard_undo_and_the_end(server, browser, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    folder = tmp_path / "clips" / "Alpha a_Alpha"
    folder.mkdir(parents=True)
    t = np.arange(3 * 48000) / 48000
    for i, conf in enumerate((0.9, 0.7)):
        sf.write(folder / f"{conf:.3f}_{i}_rec_0.00s_3.00s.wav",
                 (0.3 * np.sin(2 * np.pi * (2000 + 1000 * i) * t)).astype(np.float32), 48000)
    browser.get(server)
    _wait(lambda: _tab(browser, "Review"), what="the Review tab").click()
    box = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#review-folder textarea"),
                what="the folder box")
    box.send_keys(str(tmp_path / "clips"))
    next(e for e in browser.find_elements(By.TAG_NAME, "button")
         if e.text.strip() == "Load" and e.is_displayed()).click()

    def info(expected: str) -> str:
        return _wait(lambda: (lambda v: v if expected in v else None)(
            browser.find_element(By.CSS_SELECTOR, "#review-info textarea")
            .get_attribute("value")), what=f"the clip line saying {expected!r}")

    assert "score 0.900" in info("0 right, 0 wrong, 2 to go")
    _wait(lambda: browser.find_element(By.CSS_SELECTOR, "#review-spectrogram img"),
          what="the clip's spectrogram")
    _shoot(browser, "review_clip")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("r")
    assert "score 0.700" in info("1 right, 0 wrong, 1 to go")
    assert (folder / "Positive" / "0.900_0_rec_0.00s_3.00s.wav").is_file()
    body.send_keys("u")
    info("0 right, 0 wrong, 2 to go")
    assert not (folder / "Positive" / "0.900_0_rec_0.00s_3.00s.wav").exists()
    body.send_keys("r")
    info("1 right, 0 wrong, 1 to go")
    body.send_keys("w")
    info("All clips of Alpha a_Alpha reviewed: 1 right, 1 wrong")
    assert (folder / "Negative" / "0.700_1_rec_0.00s_3.00s.wav").is_file()
