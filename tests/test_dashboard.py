"""The recorder's dashboard: pages with the right counts from a database made by the recorder's
own schema code, clips and spectrograms, and the attacks the GUI is tested against (path
traversal in every encoding, symbolic links out, unauthenticated access, DNS rebinding,
writes), with http.client and curl; one real-browser check (Debian's chromium)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from base64 import b64encode
from dataclasses import replace
from pathlib import Path

import pytest
import soundfile as sf
from conftest import chirp
from edgebird.export.config import TEMPLATE, ConfigError, DashboardConfig, load_config
from edgebird.export.dashboard import PAGE, Store, make_server, start_thread
from edgebird.export.passwords import PasswordHashError, make_hash, parse_hash
from edgebird.export.recorder import Database

A = "Turdus merula_Eurasian Blackbird"
B = "Erithacus rubecula_European Robin"
EVIL = "Evil <script>alert(1)</script>_<b>Bold</b>"
SHA = "ab" * 32
PASSWORD = "corvid-27 hedge"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_station(root: Path) -> dict:
    """A data folder as the recorder leaves it: rows written through its ``Database`` (its
    schema, WAL), FLAC clips under ``clips/``, a ``health.json``; plus a secret outside."""
    data = root / "data"
    db = Database(data / "detections.sqlite")
    today = dt.datetime.now(dt.timezone.utc).replace(hour=6, minute=0, second=0,
                                                     microsecond=0)
    rows, clips = [], []
    for i in range(PAGE + 5):  # today, A: more than a page, spread over 06:00 and 07:00
        t = today + dt.timedelta(minutes=3 * i)
        clip = None
        if i >= PAGE + 2:  # the newest three: on the first page
            clip = f"clips/{t:%Y-%m-%d}/Eurasian_Blackbird/{t:%H-%M-%S}_live_{i}.0s.flac"
            clips.append(clip)
        rows.append((_stamp(t), "live", float(i), i + 3.0, A, 0.5 + i / 100, "Field.tflite",
                     SHA, clip, "synced"))
    for i in range(2):  # today, B and the hostile label, at 09:00
        t = today + dt.timedelta(hours=3, seconds=i)
        rows.append((_stamp(t), "live", 100.0 + i, 103.0 + i, B, 0.9, "Field.tflite", SHA,
                     None, "unknown"))
    rows.append((_stamp(today + dt.timedelta(hours=3)), "live", 200.0, 203.0, EVIL, 0.7,
                 "Field.tflite", SHA, None, "synced"))
    for i in range(3):  # yesterday: in the week, not today
        t = today - dt.timedelta(days=1) + dt.timedelta(minutes=i)
        rows.append((_stamp(t), "live-1", float(i), i + 3.0, B, 0.6, "Old.tflite", "cd" * 32,
                     None, "synced"))
    for i in range(4):  # ten days ago: outside the week
        t = today - dt.timedelta(days=10) + dt.timedelta(minutes=i)
        rows.append((_stamp(t), "live-10", float(i), i + 3.0, B, 0.6, "Old.tflite",
                     "cd" * 32, None, "synced"))
    assert all(db.add(rows))
    db.close()
    for clip in clips:
        path = data / clip
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, chirp(5.0, 48000), 48000, format="FLAC", subtype="PCM_16")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    (data / "health.json").write_text(json.dumps({
        "station": "hedge-3", "model": "Field.tflite", "model_sha256": SHA,
        "source": "soundcard", "status": "running", "windows": 1200, "detections": 31,
        "last_detection": {"time_utc": now, "species": A, "confidence": 0.8}, "lag_s": 0.4,
        "overruns": 2, "windows_skipped": 7, "clips_deleted": 0, "disk_low": False,
        "errors": [], "uptime_s": 3700.0,
        "clock": {"synchronized": True, "jumps": 0, "last_jump": None, "flag": "synced",
                  "trusted": True},
        "schedule": {"description": "all day", "active": True, "next_window": None},
        "disk_free_mb": 20480.5, "updated_utc": now}))
    (root / "secret.flac").write_bytes(b"SECRET-OUTSIDE")
    (data / "clips" / "notes.txt").write_text("not a clip")
    (data / "clips" / "escape.flac").symlink_to(root / "secret.flac")
    (data / "clips" / "escape_dir").symlink_to(root, target_is_directory=True)
    return {"data": data, "clips": clips, "today": today}


def write_config(root: Path, port: int, **dashboard) -> Path:
    model = root / "Field.tflite"
    model.write_bytes(b"not really a model: the dashboard only hashes it")
    (root / "Field_Labels.txt").write_text(f"{A}\n{B}\n")
    text = TEMPLATE.format(model=model, labels=root / "Field_Labels.txt", thresholds="",
                           species_list="", station="hedge-3")
    text = text.replace("data_dir = data", f"data_dir = {root / 'data'}")
    text = text.replace("port = 8080", f"port = {port}")
    for key, value in dashboard.items():
        text = re.sub(rf"(?m)^{key} =.*$", f"{key} = {value}", text)
    path = root / "config.ini"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    root = tmp_path_factory.mktemp("station")
    return {**make_station(root), "root": root}


def _serve(cfg):
    server = make_server(cfg)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def open_server(station):
    """No password, on 127.0.0.1 (the default)."""
    cfg = load_config(write_config(station["root"], _free_port()))
    server = _serve(cfg)
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port: int, path: str, headers: dict | None = None, method: str = "GET",
        host: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """``path`` sent exactly as written (http.client does not normalise ``..``)."""
    conn = http.client.HTTPConnection(host, port, timeout=20)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), body


# -- pages --------------------------------------------------------------------------------
def test_page_counts(open_server, station):
    status, headers, body = get(open_server, "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    n_today = PAGE + 5 + 3
    assert f"Today: <b>{n_today}</b> detections of <b>3</b> species" in page
    assert f"<b>{n_today + 3}</b> detections of <b>3</b> species" in page  # 10 days ago: out
    assert "Eurasian Blackbird" in page and "<i>Turdus merula</i>" in page
    # per hour: A has 20 rows at 06:xx and 5 at 07:xx (3-minute steps from 06:00)
    row = re.search(r"<tr><td>Eurasian Blackbird.*?</tr>", page.split("Per hour")[1]).group(0)
    cells = re.findall(r"<td[^>]*>(\d*)</td>", row)
    assert cells[6] == "20" and cells[7] == "5" and cells.count("") == 22
    assert f"{n_today} detections; page 1 of 2" in page
    assert page.count("<div class=det>") == PAGE
    assert "hedge-3" in page and SHA in page and "20480.5 MB" in page and "2 overruns" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # the label is escaped
    assert "Old.tflite" in page  # the week's other model, with its hash
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_pages_species_and_days(open_server, station):
    today = station["today"]
    _, _, body = get(open_server, "/?page=2")
    assert body.decode().count("<div class=det>") == 5 + 3
    _, _, body = get(open_server, f"/?species={B.replace(' ', '+')}")
    page = body.decode()
    assert "2 detections" in page and page.count("<div class=det>") == 2
    assert "clock unknown" in page  # a row whose clock was not trusted says so
    yesterday = (today - dt.timedelta(days=1)).strftime("%Y-%m-%d")
    _, _, body = get(open_server, f"/?day={yesterday}")
    assert "3 detections; page 1 of 1" in body.decode()
    for bad in ("/?day=2024-13-01", "/?day=../../x", "/?page=0", "/?page=x", "/?page=1e9"):
        assert get(open_server, bad)[0] == 400, bad


def test_local_time(station, tmp_path):
    """With ``[schedule] timezone`` the page's days and hours are local: the 06:00-07:12 UTC
    rows fall at 11:30-12:42 in India (UTC+5:30); a day is the UTC range of its local day."""
    cfg = load_config(write_config(station["root"], _free_port(), timezone="Asia/Kolkata"))
    server = _serve(cfg)
    try:
        day = station["today"].strftime("%Y-%m-%d")
        page = get(server.server_address[1], f"/?day={day}")[2].decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "local (Asia/Kolkata" in page
    row = re.search(r"<tr><td>Eurasian Blackbird.*?</tr>", page.split("Per hour")[1]).group(0)
    cells = re.findall(r"<td[^>]*>(\d*)</td>", row)
    assert cells[11] == "10" and cells[12] == "15" and cells.count("") == 22
    assert "<b>12:42:00</b>" in page and "<b>14:30:01</b>" in page  # B at 09:00:01 UTC
    assert f"{PAGE + 5 + 3} detections; page 1 of 2" in page


def test_clip_and_spectrogram(open_server, station):
    clip = station["clips"][0]
    rel = clip[len("clips/"):]
    _, _, body = get(open_server, "/")
    assert f'src="/spectrogram/{rel}"' in body.decode()
    assert f'src="/clip/{rel}"' in body.decode()
    status, headers, audio = get(open_server, f"/clip/{rel}")
    assert status == 200 and headers["Content-Type"] == "audio/flac"
    assert audio == (station["data"] / clip).read_bytes()
    status, headers, image = get(open_server, f"/spectrogram/{rel}")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", image[16:24])
    assert 400 <= width <= 480 and height == 128 and len(image) < 120_000
    assert get(open_server, f"/spectrogram/{rel}")[2] == image  # cached, identical
    assert get(open_server, f"/clip/{rel}", method="HEAD")[0] == 200


def test_the_database_is_opened_read_only(station):
    conn = Store(station["data"]).connect()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM detections")
    conn.close()


# -- attacks ------------------------------------------------------------------------------
TRAVERSALS = [
    "/clip/../detections.sqlite", "/clip/../../secret.flac", "/clip/..%2f..%2fsecret.flac",
    "/clip/%2e%2e/%2e%2e/secret.flac", "/clip/%2E%2E%2F%2E%2E%2Fsecret.flac",
    "/clip/%252e%252e/%252e%252e/secret.flac", "/clip/..%5c..%5csecret.flac",
    "/clip/%2f" + "etc/passwd", "/clip//etc/passwd", "/clip/%00../secret.flac",
    "/clip/escape.flac", "/clip/escape_dir/secret.flac", "/clip/notes.txt",
    "/clip/./escape.flac", "/spectrogram/../../secret.flac", "/spectrogram/escape.flac",
    "/../config.ini", "/health.json/../config.ini", "/detections.sqlite", "/config.ini",
]


def test_traversal_is_refused(open_server, station):
    for path in TRAVERSALS:
        status, _, body = get(open_server, path)
        assert status == 404, (path, status)
        assert b"SECRET" not in body and b"SQLite" not in body, path


def test_traversal_with_curl(open_server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    for path in TRAVERSALS:
        run = subprocess.run([curl, "-s", "--path-as-is", "-o", "-", "-w", "\n%{http_code}",
                              f"http://127.0.0.1:{open_server}{path}"],
                             capture_output=True, timeout=20)
        body, _, code = run.stdout.rpartition(b"\n")
        assert code == b"404" and b"SECRET" not in body, (path, code)


def test_other_hosts_and_writes_are_refused(open_server):
    """On 127.0.0.1 a page of another site cannot reach it by DNS rebinding (its Host is
    the site's name), and nothing but GET and HEAD is answered."""
    assert get(open_server, "/", {"Host": "evil.example:80"})[0] == 403
    assert get(open_server, "/", {"Host": f"localhost:{open_server}"})[0] == 200
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = get(open_server, "/", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD", method


def test_the_network_needs_a_password(station, tmp_path):
    for address in ("0.0.0.0", "192.168.1.20", "::"):
        cfg = write_config(tmp_path, 8080, address=address)
        with pytest.raises(ConfigError, match="set password_hash"):
            load_config(cfg)
    built = replace(load_config(write_config(tmp_path, 8080)),
                    dashboard=DashboardConfig(address="0.0.0.0"))
    with pytest.raises(ConfigError, match="needs password_hash"):  # a config built in code
        make_server(built)
    run = subprocess.run([sys.executable, "-m", "edgebird.export.dashboard", "--config",
                          str(write_config(tmp_path, 8080, address="0.0.0.0"))],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "opens the dashboard to the network" in run.stderr


def test_a_password_in_the_config_is_refused():
    with pytest.raises(PasswordHashError, match="never goes in the config"):
        parse_hash("hunter2")
    with pytest.raises(PasswordHashError, match="too weak"):
        parse_hash(make_hash("x", iterations=1000).text())
    good = make_hash(PASSWORD, iterations=20_000)
    assert parse_hash(good.text()).matches(PASSWORD)
    assert not parse_hash(good.text()).matches(PASSWORD + " ")


def test_hash_password_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "edgebird.export.dashboard",
                          "--hash-password"], input=PASSWORD + "\n", capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("password_hash = "))
    assert PASSWORD not in run.stdout
    assert parse_hash(line.split(" = ", 1)[1]).matches(PASSWORD)
    empty = subprocess.run([sys.executable, "-m", "edgebird.export.dashboard",
                            "--hash-password"], input="\n", capture_output=True, text=True,
                           timeout=60)
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_password_on_the_network(station, tmp_path):
    """On 0.0.0.0 with a password: nothing without it, a wrong one is 401, the right one
    (any user name) opens the page and the clips."""
    root = station["root"]
    cfg = load_config(write_config(
        root, _free_port(), address="0.0.0.0",
        password_hash=make_hash(PASSWORD, iterations=20_000).text()))
    server = _serve(cfg)
    port = server.server_address[1]
    rel = station["clips"][0][len("clips/"):]

    def auth(user: str, password: str) -> dict:
        return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}

    try:
        for path in ("/", f"/clip/{rel}", f"/spectrogram/{rel}", "/health.json",
                     "/clip/../../secret.flac"):
            status, headers, body = get(port, path)
            assert status == 401 and "Basic" in headers["WWW-Authenticate"], path
            assert b"hedge-3" not in body
        for bad in (auth("edgebird", "wrong"), auth("edgebird", PASSWORD.upper()),
                    {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"},
                    {"Authorization": "Basic " + b64encode(PASSWORD.encode()).decode()}):
            assert get(port, "/", bad)[0] == 401, bad
        ok = auth("anyone", PASSWORD)
        status, _, body = get(port, "/", ok, host="127.0.0.1")
        assert status == 200 and b"hedge-3" in body
        assert get(port, f"/clip/{rel}", ok)[0] == 200
        assert get(port, "/clip/../../secret.flac", ok)[0] == 404
        curl = shutil.which("curl")
        if curl:
            for user, code in ((f"x:{PASSWORD}", "200"), ("x:nope", "401")):
                run = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                      "-u", user, f"http://127.0.0.1:{port}/"],
                                     capture_output=True, text=True, timeout=20)
                assert run.stdout == code, (user, run.stdout)
    finally:
        server.shutdown()
        server.server_close()


def test_start_thread_beside_the_recorder(station, caplog):
    """The recorder's thread: serves; a port already in use is logged, not fatal."""
    port = _free_port()
    cfg = load_config(write_config(station["root"], port, enabled="yes"))
    assert cfg.dashboard.enabled
    server = start_thread(cfg)
    try:
        assert get(port, "/")[0] == 200
        assert start_thread(cfg) is None
        assert "dashboard not started" in caplog.text
    finally:
        server.shutdown()
        server.server_close()


# -- a real browser -----------------------------------------------------------------------
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.mark.integration
def test_in_a_browser(open_server, tmp_path):
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {DRIVER})")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1500"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(f"http://127.0.0.1:{open_server}/")
        images = driver.find_elements(By.CSS_SELECTOR, "img[src^='/spectrogram/']")
        assert len(images) == 3
        driver.execute_script("arguments[0].scrollIntoView()", images[0])
        end = time.time() + 20
        while time.time() < end and not driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", images[0]):
            time.sleep(0.2)
        assert driver.execute_script("return arguments[0].naturalHeight", images[0]) == 128
        audio = driver.find_elements(By.CSS_SELECTOR, "audio[controls]")
        assert len(audio) == 3
        driver.execute_script("arguments[0].load()", audio[0])
        end = time.time() + 20
        while time.time() < end and not driver.execute_script(
                "return arguments[0].readyState >= 1", audio[0]):
            time.sleep(0.2)
        duration = driver.execute_script("return arguments[0].duration", audio[0])
        assert abs(duration - 5.0) < 0.1, duration  # Chromium decoded the FLAC clip
        assert "Eurasian Blackbird" in driver.find_element(By.TAG_NAME, "body").text
        driver.execute_script("window.scrollTo(0, 0)")
        out = os.environ.get("EDGEBIRD_DASHBOARD_SCREENSHOT", "/tmp/dash19.png")
        driver.save_screenshot(out)
    finally:
        driver.quit()
