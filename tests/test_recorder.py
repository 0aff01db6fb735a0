"""The field recorder and ``edgebird deploy``: same detections as ``analyze``, durable under
``kill -9``, a full disk handled, bad configuration refused; the kit installs into a fresh
virtualenv without TensorFlow and replays a file there."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from edgebird.export.config import TEMPLATE, ConfigError, load_config
from edgebird.export.recorder import Recorder

from edgebird.core.writers.readers import read_results
from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files

LABELS = [f"Species {c}_{c.upper()}bird" for c in "abcdef"]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """BirdNET with a random 1024 -> 6 head appended (weights do not matter for plumbing)."""
    from edgebird.backbones.birdnet import graph as tflite_graph
    from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR, birdnet_files
    from edgebird.training.model_export import write_model

    folder = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.08, (1024, len(LABELS))).astype(np.float32)
    b = np.full(len(LABELS), -1.0, dtype=np.float32)
    layers = [(w, b, False)]
    content = tflite_graph.append_dense_head(birdnet_files().model.read_bytes(),
                                             EMBEDDING_TENSOR, layers, "replace")
    return write_model(folder / "Field.tflite", content, LABELS, None)


def recording(path: Path, seconds: float = 20.0) -> Path:
    from conftest import chirp

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, chirp(seconds, 48000), 48000, subtype="FLOAT")
    return path


def config(tmp: Path, model: Path, source: Path, **over) -> Path:
    text = TEMPLATE.format(model=model, labels=f"{model.with_suffix('')}_Labels.txt",
                           thresholds="", species_list="", station="test")
    text = text.replace("source = soundcard", "source = file")
    text = text.replace("input =\n", f"input = {source}\n")
    text = text.replace("min_conf =\n", f"min_conf = {over.pop('min_conf', 0.3)}\n")
    text = text.replace("data_dir = data", f"data_dir = {tmp / 'data'}")
    for name, value in over.items():  # a key in several sections is named section__key
        section, _, key = name.rpartition("__")
        start = text.index(f"[{section}]") if section else 0
        at = text.index(f"\n{key} = ", start) + 1
        text = text[:at] + text[at:].replace(f"{key} = ", f"{key} = {value}\n# was: ", 1)
    path = tmp / "config.ini"
    path.write_text(text)
    return path


def db_rows(data: Path) -> list[tuple]:
    with sqlite3.connect(data / "detections.sqlite") as c:
        return c.execute("SELECT source, start_s, end_s, species, confidence, clip FROM "
                         "detections ORDER BY source, start_s, species").fetchall()


def analyze_rows(tmp: Path, model: Path, audio: Path) -> list[tuple]:
    analyze_files([audio], tmp / "analyzed", AnalyzeSettings(
        classifier=str(model), min_conf=0.3, rtypes=("csv",)), progress=False,
        echo=lambda m: None)
    table = next((tmp / "analyzed").glob("*.BirdNET.results.csv"))
    return sorted((d.start, d.end, d.label, d.confidence) for d in read_results(table)[1])


def same(recorded: list[tuple], analyzed: list[tuple]) -> bool:
    """Same windows and species; scores equal to the table's 4 decimals."""
    got = sorted((round(s, 2), round(e, 2), sp, c) for _, s, e, sp, c, _ in recorded)
    return bool(got) and [g[:3] for g in got] == [a[:3] for a in analyzed] and all(
        abs(g[3] - a[3]) <= 6e-5 for g, a in zip(got, analyzed, strict=True))


def test_replay_gives_the_same_detections_as_analyze(tmp_path, standalone):
    audio = recording(tmp_path / "in" / "rec.wav", 20.0)
    cfg = load_config(config(tmp_path, standalone, audio))
    assert Recorder(cfg).run() == 0
    rows = db_rows(cfg.data_dir)
    assert same(rows, analyze_rows(tmp_path, standalone, audio))
    for *_, clip in rows:
        assert clip and sf.info(str(cfg.data_dir / clip)).samplerate == 48000
    health = __import__("json").loads((cfg.data_dir / "health.json").read_text())
    assert health["status"] == "stopped" and health["windows"] == 7
    assert health["detections"] == len(rows) and health["model_sha256"]
    tables = list((cfg.data_dir / "tables").iterdir())
    assert {p.name.split(".", 1)[1] for p in tables} == {"BirdNET.selection.table.txt",
                                                         "BirdNET.results.csv"}
    # started again on the same recording: no row and no clip is duplicated
    clips = sorted((cfg.data_dir / "clips").rglob("*.flac"))
    Recorder(cfg).run()
    assert len(db_rows(cfg.data_dir)) == len(rows)
    assert sorted((cfg.data_dir / "clips").rglob("*.flac")) == clips


def test_a_live_source_restarted_keeps_every_detection(tmp_path, standalone, monkeypatch):
    """Live offsets restart at 0 each run, so each run is its own source: nothing dropped."""
    from edgebird.export import recorder as rec
    from edgebird.export.sources import FileSource

    audio = recording(tmp_path / "in" / "rec.wav", 12.0)

    class FakeCard(FileSource):
        def streams(self):
            for _, stream in super().streams():
                yield "soundcard", stream

    path = config(tmp_path, standalone, audio, clips="no")
    path.write_text(path.read_text().replace("source = file", "source = soundcard"))
    monkeypatch.setattr(rec, "make_source", lambda *a: FakeCard(str(audio)))
    cfg = load_config(path)
    Recorder(cfg).run()
    first = len(db_rows(cfg.data_dir))
    time.sleep(1.1)  # the run's name has a one-second resolution
    Recorder(cfg).run()
    rows = db_rows(cfg.data_dir)
    assert first > 0 and len(rows) == 2 * first
    assert len({r[0] for r in rows}) == 2 and all(r[0].startswith("soundcard@") for r in rows)


def test_kill_9_keeps_the_database_intact(tmp_path, standalone):
    audio = recording(tmp_path / "in" / "long.wav", 240.0)
    path = config(tmp_path, standalone, audio, clips="no")
    cmd = [sys.executable, "-m", "edgebird.export.recorder", "--config", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "data" / "detections.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as c:
                    if c.execute("SELECT count(*) FROM detections").fetchone()[0] >= 3:
                        break
            except sqlite3.OperationalError:  # created, its table not yet
                pass
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        partial = c.execute("SELECT count(*) FROM detections").fetchone()[0]
    assert partial >= 3
    assert subprocess.run(cmd, capture_output=True).returncode == 0  # resumes, completes
    full = db_rows(tmp_path / "data")
    assert len(full) >= partial and len(full) == len(set((r[1], r[3]) for r in full))


def test_sigterm_stops_cleanly(tmp_path, standalone):
    audio = recording(tmp_path / "in" / "long.wav", 120.0)
    path = config(tmp_path, standalone, audio, realtime="yes")
    proc = subprocess.Popen([sys.executable, "-m", "edgebird.export.recorder", "--config",
                             str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    health = __import__("json").loads((tmp_path / "data" / "health.json").read_text())
    assert health["status"] == "stopped" and 0 < health["windows"] < 40


def test_the_recorder_serves_its_dashboard_and_takes_it_along(tmp_path, standalone):
    """``[dashboard] enabled = yes``: the running recorder answers on its port with a page
    saying it runs; SIGTERM stops both (the port is closed after the process ends)."""
    import http.client
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    audio = recording(tmp_path / "in" / "long.wav", 120.0)
    path = config(tmp_path, standalone, audio, realtime="yes", dashboard__enabled="yes",
                  port=port)
    proc = subprocess.Popen([sys.executable, "-m", "edgebird.export.recorder", "--config",
                             str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        page, end = "", time.time() + 60
        while time.time() < end and "running" not in page:
            time.sleep(0.5)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/")
                page = conn.getresponse().read().decode()
            except OSError:
                continue
        assert "<span class=ok>running</span>" in page and "Field.tflite" in page, page[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_full_disk_deletes_old_clips_and_keeps_detecting(tmp_path, standalone):
    audio = recording(tmp_path / "in" / "rec.wav", 30.0)
    cfg = load_config(config(tmp_path, standalone, audio, min_conf=0.01))
    old = cfg.data_dir / "clips" / "2020-01-01" / "X"
    old.mkdir(parents=True)
    for i in range(3):
        sf.write(old / f"old{i}.flac", np.zeros(4800, np.float32), 48000)
    calls = {"n": 0}

    def free_mb(_):  # plenty at first, then full for good
        calls["n"] += 1
        return 1e6 if calls["n"] <= 2 else 1.0

    rec = Recorder(cfg, free_mb=free_mb)
    rec.run()
    health = __import__("json").loads((cfg.data_dir / "health.json").read_text())
    assert health["clips_deleted"] >= 3 and health["disk_low"] is True
    assert not list(old.glob("*.flac"))
    rows = db_rows(cfg.data_dir)
    assert health["windows"] == 10 and len(rows) == health["detections"] > 0
    assert (cfg.data_dir / "detections.sqlite").is_file()


def test_bad_configuration_stops_at_start(tmp_path, standalone):
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    labels = tmp_path / "m" / "Bad_Labels.txt"
    labels.parent.mkdir()
    labels.write_text("only_one\n")
    bad_model = labels.with_name("Bad.tflite")
    bad_model.write_bytes(standalone.read_bytes())
    cases = [
        (lambda: config(tmp_path, bad_model, audio), "do not belong together"),
        (lambda: config(tmp_path, tmp_path / "none.tflite", audio), "model not found"),
        (lambda: config(tmp_path, standalone, audio, sensitivity="3"), "sensitivity"),
        (lambda: config(tmp_path, standalone, tmp_path / "nowhere.wav"), "not found"),
    ]
    for make, message in cases:
        path = make()
        r = subprocess.run([sys.executable, "-m", "edgebird.export.recorder", "--config",
                            str(path)], capture_output=True, text=True)
        assert r.returncode == 2 and message in r.stderr, (message, r.stderr)
        assert "Traceback" not in r.stderr
    with pytest.raises(ConfigError, match="head-only|standalone"):
        head = tmp_path / "h" / "Head.tflite"
        head.parent.mkdir()
        from edgebird.backbones.birdnet import graph as tflite_graph
        from edgebird.training.model_export import write_model

        write_model(head, tflite_graph.dense_head_model(
            [(np.zeros((1024, 6), np.float32), np.zeros(6, np.float32), False)]),
            LABELS, None)
        Recorder(load_config(config(tmp_path, head, audio)))


def test_thresholds_outside_0_1_stop_at_start(tmp_path, standalone):
    """The recorder reads thresholds with the kit core's parser, as analyze does: a value
    outside [0, 1] is refused at start (exit 2, what to fix), even when min_conf overrides it."""
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    thresholds = tmp_path / "Field_Thresholds.csv"
    thresholds.write_text("Class,Threshold\n" + "".join(f"{lab},0.5\n" for lab in LABELS[:-1])
                          + f"{LABELS[-1]},1.7\n")
    for min_conf in ("", "0.3"):
        path = config(tmp_path, standalone, audio, thresholds=thresholds, min_conf=min_conf)
        r = subprocess.run([sys.executable, "-m", "edgebird.export.recorder", "--config",
                            str(path)], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert "[model] thresholds:" in r.stderr and "must be in [0, 1]" in r.stderr, r.stderr
        assert LABELS[-1] in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        analyze_rows(tmp_path, _beside(standalone, tmp_path / "a", thresholds), audio)


def _beside(model: Path, folder: Path, thresholds: Path) -> Path:
    """A copy of ``model`` with its labels and ``thresholds`` as its X_Thresholds.csv."""
    import shutil

    folder.mkdir()
    copy = Path(shutil.copy2(model, folder / model.name))
    shutil.copy2(f"{model.with_suffix('')}_Labels.txt", folder)
    shutil.copy2(thresholds, f"{copy.with_suffix('')}_Thresholds.csv")
    return copy


@pytest.mark.integration
def test_kit_installs_alone_and_replays_like_analyze(tmp_path, standalone):
    """The kit in a fresh virtualenv (no TensorFlow, no edgebird): same detections."""
    from edgebird.deploy import build_kit

    kit = build_kit(standalone.parent, tmp_path / "field-kit.tar.gz")
    # BirdNET's own 6,522-class layer is pruned from a replace-mode model: half the size
    assert standalone.stat().st_size < 30e6 and kit.stat().st_size < 30e6
    with tarfile.open(kit) as tar:
        tar.extractall(tmp_path / "unpacked")
    root = tmp_path / "unpacked" / "field-kit"
    for name in ("install.sh", "config.ini", "edgebird-recorder.service", "README.md",
                 "model/Field.tflite", "model/Field_Labels.txt", "runtime/pyproject.toml"):
        assert (root / name).is_file(), name
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--only-binary=:all:",
                          f"{root / 'runtime'}[litert]"], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import importlib.util as u; print(u.find_spec('tensorflow'), "
                            "u.find_spec('edgebird.pipeline'))"],
                           capture_output=True, text=True,
                           cwd=tmp_path)
    assert check.stdout.strip() == "None None", check
    audio = recording(tmp_path / "in" / "rec.wav", 20.0)
    text = (root / "config.ini").read_text().replace("source = soundcard", "source = file")
    text = text.replace("input =\n", f"input = {audio}\n").replace("min_conf =\n",
                                                                  "min_conf = 0.3\n")
    (root / "config.ini").write_text(text)
    r = subprocess.run([str(venv / "bin" / "edgebird-recorder"), "--config",
                        str(root / "config.ini")], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert same(db_rows(root / "data"), analyze_rows(tmp_path, standalone, audio))
    dashboard_in_the_kit(venv, root)


def dashboard_in_the_kit(venv: Path, root: Path) -> None:
    """The kit's own ``edgebird-dashboard`` makes a password hash and serves the replay's
    detections (everything it needs ships in the kit)."""
    import http.client
    import socket

    made = subprocess.run([str(venv / "bin" / "edgebird-dashboard"), "--hash-password"],
                          input="pw\n", capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and "password_hash = pbkdf2_sha256$" in made.stdout, made
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    text = (root / "config.ini").read_text().replace("port = 8080", f"port = {port}")
    (root / "config.ini").write_text(text)
    proc = subprocess.Popen([str(venv / "bin" / "edgebird-dashboard"), "--config",
                             str(root / "config.ini")], stdout=subprocess.PIPE, text=True)
    try:
        assert "edgebird-dashboard: http://127.0.0.1:" in proc.stdout.readline()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        resp = conn.getresponse()
        page = resp.read().decode()
        assert resp.status == 200 and "Field.tflite" in page, page[-2000:]
        n = len(db_rows(root / "data"))
        assert f"Today: <b>{n}</b> detections" in page
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_deploy_command_bakes_a_location_filter(tmp_path, standalone):
    from edgebird.cli import main

    kit = tmp_path / "k.tar.gz"
    assert main(["deploy", "--model", str(standalone), "-o", str(kit), "--lat", "52.5",
                 "--lon", "13.4"]) == 0
    with tarfile.open(kit) as tar:
        names = tar.getnames()
        species = tar.extractfile("k/species_list.txt").read().decode()
        cfg = tar.extractfile("k/config.ini").read().decode()
    assert "k/runtime/edgebird/export/recorder.py" in names
    assert "species_list = species_list.txt" in cfg
    assert set(species.splitlines()[1:]) == set(LABELS)  # custom classes are kept
    head = standalone.with_name("Head.tflite")
    from edgebird.backbones.birdnet import graph as tflite_graph
    from edgebird.training.model_export import write_model

    write_model(head, tflite_graph.dense_head_model(
        [(np.zeros((1024, 6), np.float32), np.zeros(6, np.float32), False)]), LABELS, None)
    assert main(["deploy", "--model", str(head), "-o", str(tmp_path / "h.tar.gz")]) == 2


def test_arecord_source_through_a_stand_in(tmp_path, standalone, monkeypatch):
    """The ALSA path: raw 16-bit PCM from an `arecord` on PATH (here a stand-in script that
    plays 9 s of a file and stops, as a device that disappears would)."""
    audio = recording(tmp_path / "in" / "rec.wav", 9.0)
    pcm = tmp_path / "rec.raw"
    x, _ = sf.read(audio, dtype="int16")
    pcm.write_bytes(x.tobytes())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "arecord"
    fake.write_text(f"#!/bin/sh\ncat {pcm}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    path = config(tmp_path, standalone, audio, clips="no", min_conf=0.01)
    path.write_text(path.read_text().replace("source = file", "source = arecord"))
    cfg = load_config(path)
    rec = Recorder(cfg)
    rec.run()
    health = __import__("json").loads((cfg.data_dir / "health.json").read_text())
    assert health["windows"] == 3 and health["detections"] == len(db_rows(cfg.data_dir)) > 0
    assert any("arecord stopped" in e for e in health["errors"])


def _run_recorder(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebird.export.recorder", "--config",
                           str(path)], capture_output=True, text=True)


def test_unknown_sections_and_keys_stop_at_start(tmp_path, standalone):
    """A misspelled key or section used to fall back to the default with exit 0 (issue 17,
    item 8): now exit 2 naming the file, the line and the close match."""
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    good = config(tmp_path, standalone, audio).read_text()
    cases = [
        (good.replace("sensitivity = ", "sensitivty = "), "unknown key 'sensitivty'",
         "did you mean 'sensitivity'?"),
        (good.replace("[detection]", "[detektion]"), "unknown section [detektion]",
         "did you mean 'detection'?"),
    ]
    for text, message, hint in cases:
        path = tmp_path / "config.ini"
        path.write_text(text)
        line = next(i for i, ln in enumerate(text.splitlines(), 1)
                    if ln.startswith(("sensitivty", "[detektion]")))
        r = _run_recorder(path)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr and hint in r.stderr, r.stderr
        assert f"{path} line {line}:" in r.stderr and "Traceback" not in r.stderr


def test_thresholds_of_another_model_stop_at_start(tmp_path, standalone, caplog):
    """A thresholds file none of whose classes is a model label was dropped silently (every
    class at the default); now refused. Some classes missing: a warning, the rest used."""
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    other = tmp_path / "Other_Thresholds.csv"
    other.write_text("Class,Threshold\n" + "".join(f"{lab}x,0.5\n" for lab in LABELS))
    r = _run_recorder(config(tmp_path, standalone, audio, thresholds=other, min_conf=""))
    assert r.returncode == 2, r.stderr
    assert "none of its 6 classes is a label of the model" in r.stderr
    assert str(other) in r.stderr and f"'{LABELS[0]}'" in r.stderr
    partial = tmp_path / "Partial_Thresholds.csv"
    partial.write_text("Class,Threshold\n" + "".join(f"{lab},0.6\n" for lab in LABELS[:4])
                       + "Nobody_Nobird,0.2\n")
    cfg = load_config(config(tmp_path, standalone, audio, thresholds=partial, min_conf=""))
    with caplog.at_level("WARNING", logger="edgebird.recorder"):
        rec = Recorder(cfg)
    assert rec.model.thresholds.tolist() == [0.6] * 4 + [0.25] * 2
    assert "Nobody_Nobird" in caplog.text and LABELS[5] in caplog.text
    rec.db.close()


def test_unwritable_data_dir_stops_at_start(tmp_path, standalone):
    """An unwritable data_dir was a traceback after start (issue 17, item 11). A path under a
    regular file cannot be created even by root."""
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    path = config(tmp_path, standalone, audio)
    path.write_text(path.read_text().replace(f"data_dir = {tmp_path / 'data'}",
                                             f"data_dir = {blocker / 'data'}"))
    r = _run_recorder(path)
    assert r.returncode == 2, r.stderr
    assert f"[output] data_dir: {blocker / 'data'} cannot be written" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_wrong_sample_rate_says_how_to_resample(tmp_path):
    """The message pointed at 'edgebird convert', which does not exist."""
    from edgebird.export.sources import FileSource, SourceError

    wav = tmp_path / "rec44.wav"
    sf.write(wav, np.zeros(44100, np.float32), 44100)
    (_, stream), = FileSource(str(wav)).streams()
    with pytest.raises(SourceError, match=r"ffmpeg -i 'rec44.wav' -ar 48000") as exc:
        next(stream)
    assert "edgebird" not in str(exc.value)
