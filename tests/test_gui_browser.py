"""The GUI in a real browser: Debian's headless Chromium driven by Selenium through Debian's
chromedriver (no browser download). Skipped with the reason when either is missing; `.ci/run`
installs them. Set EDGEBIRD_SCREENSHOTS=DIR to save a picture of every tab (docs/screenshots
are made this way)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
TABS = ["Single file", "Batch", "Train", "Segments", "Review"]

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("gradio")
    port = _free_port()
    work = tmp_path_factory.mktemp("gui")
    proc = subprocess.Popen([sys.executable, "-m", "edgebird", "gui", "--port", str(port),
                             "--no-browser", "--workdir", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {DRIVER}); "
                    "apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic",
                 f"--user-data-dir={profile}", "--window-size=1400,1100", "--lang=en-US"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(fn, timeout=60.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = fn()
            if value:
                return value
        except Exception:  # noqa: BLE001 - the page is still rendering
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _tab(driver, name):
    from selenium.webdriver.common.by import By

    for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']"):
        if b.text.strip() == name:
            return b
    return None


def _shoot(driver, name):
    folder = os.environ.get("EDGEBIRD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def _severe(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_single_file_then_every_tab(server, browser, make_audio):
    from selenium.webdriver.common.by import By

    wav = make_audio("song.wav", seconds=9.0, sr=44100)
    browser.get(server)
    _wait(lambda: _tab(browser, "Single file"), what="the tabs")
    assert browser.title == "edgebird"
    upload = _wait(lambda: browser.find_element(By.CSS_SELECTOR, "input[type='file']"),
                   what="the recording's upload field")
    upload.send_keys(str(wav))
    button = browser.find_element(By.ID, "analyze-single")
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "audio, wave, .waveform-container"),
          what="the uploaded recording")
    time.sleep(1.0)
    button.click()
    status = _wait(lambda: (browser.find_element(By.CSS_SELECTOR, "#single-status textarea")
                            .get_attribute("value") or None), timeout=90,
                   what="the analysis status")
    assert "detections" in status, status
    browser.execute_script("document.querySelector('#single-table').scrollIntoView()")
    rows = _wait(lambda: [r for r in browser.find_elements(By.CSS_SELECTOR,
                                                           "#single-table tbody tr")
                          if re.search(r"\d.*[A-Za-z].*0\.\d{4}", r.get_attribute("textContent"))],
                 what="a detection row (start, names, confidence) in the table")
    assert rows
    _shoot(browser, "single")
    browser.execute_script("window.scrollTo(0, 0)")
    for name in TABS[1:] + TABS[:1]:
        tab = _wait(lambda n=name: _tab(browser, n), what=f"the {name} tab")
        tab.click()
        _wait(lambda t=tab: t.get_attribute("aria-selected") == "true", what=f"{name} shown")
        time.sleep(0.5)
        if name != "Single file":
            _shoot(browser, name.lower().replace(" ", "_"))
    errors = [m for m in _severe(browser) if "favicon" not in m]
    assert errors == [], errors


def test_chinese_interface(server, browser, tmp_path):
    """Gradio's i18n follows the browser's language; the Chinese labels are complete."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip("no chromium")
    browser.execute_cdp_cmd("Emulation.setLocaleOverride", {"locale": "zh-CN"})
    browser.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                            {"headers": {"Accept-Language": "zh-CN,zh;q=0.9"}})
    browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
        "Object.defineProperty(navigator, 'language', {get: () => 'zh-CN'});"
        "Object.defineProperty(navigator, 'languages', {get: () => ['zh-CN', 'zh']});")})
    browser.get(server)
    _wait(lambda: _tab(browser, "单个文件"), what="the Chinese tab names")
    assert _tab(browser, "批量分析") is not None and _tab(browser, "训练") is not None
    _shoot(browser, "single_zh")


def test_serves_no_file_it_did_not_write(server, tmp_path):
    """Only the session folder is served: files elsewhere, even in the temp folder, are 403."""
    import urllib.error
    import urllib.request

    secret = tmp_path / "secret.txt"
    secret.write_text("not for the browser")
    for path in (secret, Path(__file__), Path("/etc/hostname")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server}gradio_api/file={path}", timeout=10)
        assert err.value.code == 403, path
