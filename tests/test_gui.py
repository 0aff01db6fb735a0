"""The GUI's handlers, in process, on generated audio (and devbirds when present); the app is
built without TensorFlow. The real-browser test is test_gui_browser.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio")

from edgebird.gui import handlers as h  # noqa: E402


@pytest.fixture
def session(tmp_path):
    return h.Session(tmp_path / "work")


def test_building_the_app_imports_no_tensorflow():
    code = ("import sys; from edgebird.gui.app import build_app; from edgebird.gui.handlers "
            "import Session; import tempfile, pathlib; "
            "build_app(Session(pathlib.Path(tempfile.mkdtemp()))); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "False False"


def test_settings_become_the_clis_dataclasses():
    s = h.DetectionSettings(min_conf=0.5, sensitivity=1.2, overlap=1.0, use_top_n=True,
                            top_n=3, merge=2, fmin=500, species_mode="location", lat=52.5,
                            lon=13.4, week=20)
    settings, audio = s.resolve()
    assert (settings.min_conf, settings.sensitivity, settings.top_n,
            settings.merge_consecutive) == (0.5, 1.2, 3, 2)
    assert settings.location.lat == 52.5 and audio.overlap == 1.0 and audio.fmin == 500
    for bad in (dict(sensitivity=3.0), dict(overlap=3.5), dict(species_mode="list"),
                dict(model_mode="custom"), dict(species_mode="location", lat=100)):
        with pytest.raises(h.UserError):
            h.DetectionSettings(**bad).resolve()


def test_widgets_start_at_the_librarys_defaults(session):
    """The GUI types no default of its own: every widget starts where the dataclass does."""
    import json
    import re

    from edgebird.gui.app import build_app

    from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
    from edgebird.core.scores import DEFAULT_MIN_CONF
    from edgebird.options import choices_of, default_of
    from edgebird.pipeline.analyze import AnalyzeSettings
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.pipeline.segments import SegmentSettings
    from edgebird.species import Location
    from edgebird.training.classifier import DEFAULT_MODEL_NAME, SAVE_MODES
    from edgebird.training.train import TrainSettings

    widgets: dict[str, list] = {}
    for block in build_app(session).blocks.values():
        key = re.search(r'"key": "eb_(\w+)"', str(getattr(block, "label", None)))
        if key:
            widgets.setdefault(key.group(1), []).append(block)

    def value(key: str, i: int = 0):
        return widgets[key][i].value

    def choices(key: str) -> set:
        return {v for _, v in widgets[key][0].choices}

    audio, analyze, engine = AudioSettings(), AnalyzeSettings(), EngineSettings()
    train, seg = TrainSettings(), SegmentSettings()
    expected = {
        ("min_conf", 0): DEFAULT_MIN_CONF, ("sensitivity", 0): analyze.sensitivity,
        ("overlap", 0): audio.overlap, ("use_top_n", 0): analyze.top_n is not None,
        ("merge", 0): analyze.merge_consecutive, ("fmin", 0): audio.fmin,
        ("fmax", 0): audio.fmax, ("week", 0): default_of(Location, "week"),
        ("sf_thresh", 0): default_of(Location, "threshold"),
        ("rtypes", 0): list(analyze.rtypes), ("combine", 0): analyze.combine,
        ("skip_existing", 0): analyze.skip_existing, ("workers", 0): engine.workers,
        ("model_name", 0): DEFAULT_MODEL_NAME, ("seed", 0): train.seed,
        ("folds", 0): train.folds, ("epochs", 0): train.epochs,
        ("batch_size", 0): train.batch_size, ("learning_rate", 0): train.learning_rate,
        ("hidden_units", 0): train.hidden_units, ("dropout", 0): train.dropout,
        ("label_smoothing", 0): train.label_smoothing, ("mixup", 0): train.mixup,
        ("focal", 0): train.loss == "focal", ("focal_gamma", 0): train.focal_gamma,
        ("focal_alpha", 0): train.focal_alpha, ("upsampling_mode", 0): train.upsampling_mode,
        ("upsampling_ratio", 0): train.upsampling_ratio,
        ("synthetic_negatives", 0): train.synthetic_negatives,
        ("holdout_species", 0): train.holdout_species, ("crop_mode", 0): TRAINING_CROP_MODE,
        ("save_mode", 0): SAVE_MODES[0], ("min_conf", 1): seg.min_conf,
        ("max_conf", 0): seg.max_conf, ("max_segments", 0): seg.max_segments,
        ("seg_length", 0): seg.seg_length, ("collection_mode", 0): seg.collection_mode,
    }
    wrong = {k: (value(*k), v) for k, v in expected.items() if value(*k) != v}
    assert wrong == {}, json.dumps({str(k): str(v) for k, v in wrong.items()})
    assert choices("crop_mode") == set(choices_of(AudioSettings, "crop_mode"))
    assert choices("upsampling_mode") == set(choices_of(TrainSettings, "upsampling_mode"))
    assert choices("collection_mode") == set(choices_of(SegmentSettings, "collection_mode"))
    assert choices("save_mode") == set(SAVE_MODES)
    assert (widgets["sensitivity"][0].minimum, widgets["sensitivity"][0].maximum) == (0.5, 1.5)
    assert h.DetectionSettings().resolve() == (
        AnalyzeSettings(min_conf=DEFAULT_MIN_CONF), AudioSettings())


def test_single_file_gives_rows_a_picture_and_tables(session, make_audio):
    path = make_audio("rec.wav", seconds=10.0, sr=44100)
    r = h.analyze_single(session, str(path), h.DetectionSettings(min_conf=0.01))
    assert r.rows and all(len(row) == 5 for row in r.rows)
    assert r.figure is not None and r.status.startswith("BirdNET V2.4: ")
    assert "detections" in r.status
    assert {p.name for p in r.tables} == {"rec.BirdNET.selection.table.txt",
                                          "rec.BirdNET.results.txt", "rec.BirdNET.results.csv"}
    assert all(p.is_file() and session.workdir in p.parents for p in r.tables)
    rate, clip = h.clip_audio(str(path), r.rows[0][0], r.rows[0][1])
    assert rate == 48000 and len(clip) >= 3 * rate
    with pytest.raises(h.UserError, match="choose or drop"):
        h.analyze_single(session, None, h.DetectionSettings())
    bad = path.with_name("bad.wav")
    bad.write_text("not audio")
    with pytest.raises(h.UserError, match="bad.wav"):
        h.analyze_single(session, str(bad), h.DetectionSettings())


def test_single_file_on_a_real_recording(session, devbirds):
    clip = next((devbirds / "Junco_hyemalis").glob("*.mp3"))
    r = h.analyze_single(session, str(clip), h.DetectionSettings())
    assert any(row[2] == "Junco hyemalis" for row in r.rows), r.rows


def test_batch_reports_every_file_and_the_summary(session, make_audio, tmp_path):
    make_audio("in/a.wav", seconds=6.0)
    make_audio("in/sub/b.wav", seconds=4.0, sr=22050)
    (tmp_path / "in" / "broken.wav").write_text("no")
    states = list(h.run_batch(session, str(tmp_path / "in"), str(tmp_path / "out"),
                              ["table", "csv"], True, True, 1, h.DetectionSettings()))
    last = states[-1]
    assert last.done and last.summary is not None
    assert {k: v[0] for k, v in last.files.items()} == {
        "a.wav": "done", "sub/b.wav": "done", "broken.wav": "failed"}
    assert "2 analyzed" in last.summary.text() and "broken.wav" in last.summary.text()
    assert last.text() == "BirdNET V2.4: " + last.summary.text()  # the model named
    assert (tmp_path / "out" / "BirdNET_SelectionTable.txt").is_file()
    with pytest.raises(h.UserError, match="input folder not found"):
        list(h.run_batch(session, str(tmp_path / "nope"), str(tmp_path / "o"), ["table"],
                         False, True, 1, h.DetectionSettings()))


def test_batch_cancel_stops_and_keeps_finished_files(session, make_audio, tmp_path):
    for i in range(6):
        make_audio(f"in/f{i}.wav", seconds=60.0)
    states = []
    for state in h.run_batch(session, str(tmp_path / "in"), str(tmp_path / "out"), ["csv"],
                             False, True, 1, h.DetectionSettings()):
        states.append(state)
        if any(st == "done" for st, _ in state.files.values()):
            session.cancel.set()
    last = states[-1]
    assert last.done and last.summary is None and "cancelled" in last.error
    written = list((tmp_path / "out").glob("*.csv"))
    assert 1 <= len([p for p in written if "BirdNET.results" in p.name]) < 6


def test_model_check_and_species_preview(tmp_path):
    assert "6,522" in h.check_model("birdnet", None)
    assert h.check_model("custom", str(tmp_path / "x.tflite")).startswith("warning:")
    lst = tmp_path / "list.txt"
    lst.write_text("Turdus merula_Eurasian Blackbird\nNot a bird_Nope\n")
    text = h.species_preview(h.DetectionSettings(species_mode="list", species_file=str(lst)))
    assert text.startswith("1 species") and "Not a bird_Nope" in text
    text = h.species_preview(h.DetectionSettings(species_mode="location", lat=52.5, lon=13.4,
                                                 week=20))
    assert "Turdus merula_Eurasian Blackbird" in text


def test_training_folder_check_explains_problems(make_audio, tmp_path):
    make_audio("d/Only bird/a.wav", seconds=2.0)
    with pytest.raises(h.UserError, match="only one class"):
        h.scan_training_folder(str(tmp_path / "d"))
    for c in ("A a_A", "B b_B"):
        for i in range(3):
            make_audio(f"ok/{c}/{i}.wav", seconds=3.0)
    assert "2 classes" in h.scan_training_folder(str(tmp_path / "ok"))


@pytest.mark.integration
def test_training_in_a_child_process_and_its_outputs(session, tmp_path):
    pytest.importorskip("tensorflow")
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=3)
    kwargs = dict(folds=2, holdout_species=0, synthetic_negatives=8)
    states = list(h.run_training(session, str(tmp_path / "data"), str(tmp_path / "model"),
                                 "Demo", kwargs, "smart", "replace"))
    last = states[-1]
    assert last.error is None and last.files, last.log[-5:]
    assert last.folds_done == 2
    assert last.progress(2)[:2] == (4, 4)
    r = h.training_outputs(session, str(tmp_path / "model"), last.files, last.seconds())
    assert len(r.rows) == 5 and all(p is not None for p in r.pictures)  # MACRO + 4 songs
    assert r.model == tmp_path / "model" / "Demo.tflite"
    assert {f.name for f in r.model_files} == {"Demo.tflite", "Demo_Labels.txt",
                                              "Demo_Thresholds.csv"}
    assert "REPORT.md" in {f.name for f in r.report_files}
    assert "Demo_fold1.tflite" in {f.name for f in r.advanced_files}
    assert r.done_line().startswith("Done in ") and str(r.model) in r.done_line()
    assert "its thresholds (Demo_Thresholds.csv): " in r.done_line()


def test_every_status_line_names_the_model():
    assert h.DetectionSettings().model_name() == "BirdNET V2.4"
    custom = h.DetectionSettings(model_mode="custom", classifier="/m/Finches.tflite")
    assert custom.model_name() == "Finches.tflite"
    state = h.BatchState(model=custom.model_name(), files={"a.wav": ("done", "")})
    assert state.text() == "Finches.tflite: 1 of 1 files"


def test_training_progress_counts_the_stages_the_log_reports():
    state = h.TrainState(started=100.0)
    state.finished = 223.0  # frozen clock: 2 min 3 s
    assert state.progress(3) == (0, 5, "reading the recordings (2 min 3 s so far)")
    state.take("2 classes, 6 recordings")
    state.take("training on 40 windows (6 recordings) + 0 synthetic noise windows; 3 fold(s)")
    assert state.progress(3)[:2] == (1, 5) and "round 1 of 3" in state.progress(3)[2]
    for i in (1, 2, 3):
        state.take(f"fold {i}/3: macro F1 0.500 at the chosen thresholds")
    assert state.progress(3)[:2] == (4, 5) and "final model" in state.progress(3)[2]
    state.files = {"replace": "x.tflite"}
    assert state.progress(3)[:2] == (5, 5)
    assert [h.duration_text(s) for s in (4.4, 60, 123, 3725)] == \
        ["4 s", "1 min 0 s", "2 min 3 s", "1 h 2 min"]


def test_training_outputs_round_metrics_and_group_files(session, tmp_path):
    """The finished run as the tab shows it, on the files an export writes (made here)."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "metrics.csv").write_text(
        "model,split,class,precision@thr,recall@thr,f1@thr,auprc,auroc,positives\n"
        "head,mean,MACRO,0.8166666666666667,1,0.9,0.77777,0.5,12.4\n"
        "head,fold1,MACRO,0.1,0.1,0.1,0.1,0.1,3\n")
    for name in ("Mine.tflite", "Mine_Labels.txt", "Mine_Thresholds.csv", "Mine_head.tflite",
                 "Mine_head_Labels.txt", "Mine_fold1.tflite", "Mine_Params.csv", "REPORT.md",
                 "learning_curves.png"):
        (out / name).write_bytes(b"x")
    (out / "Mine_Thresholds.csv").write_text("Class,Threshold\nAlpha a_Alpha,0.42\n")
    files = {"fold1": str(out / "Mine_fold1.tflite"), "head": str(out / "Mine_head.tflite"),
             "replace": str(out / "Mine.tflite")}
    r = h.training_outputs(session, str(out), files, 123.0)
    assert r.rows == [["MACRO", 0.817, 1.0, 0.9, 0.778, 0.5, 12.4]]
    assert r.model == out / "Mine.tflite"
    assert [f.name for f in r.model_files] == ["Mine.tflite", "Mine_Labels.txt",
                                               "Mine_Thresholds.csv"]
    assert [f.name for f in r.report_files] == ["REPORT.md", "learning_curves.png",
                                                "metrics.csv"]
    assert {f.name for f in r.advanced_files} == {"Mine_head.tflite", "Mine_head_Labels.txt",
                                                  "Mine_fold1.tflite", "Mine_Params.csv"}
    assert all(f.parent == session.workdir / "trained" for f in r.model_files)
    assert r.pictures[0] is not None and r.pictures[1] is None  # no confusion matrix made
    assert r.done_line() == (f"Done in 2 min 3 s: your classifier is {out / 'Mine.tflite'}; "
                             "its thresholds (Mine_Thresholds.csv): Alpha 0.42")
    mode, path, words = h.use_trained(str(r.model))
    assert (mode, path) == ("custom", str(out / "Mine.tflite")) and path in words
    with pytest.raises(h.UserError, match="train a classifier first"):
        h.use_trained(None)


def test_training_cancel_stops_the_child(session, tmp_path):
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "data", clips_per_class=3)
    gen = h.run_training(session, str(tmp_path / "data"), str(tmp_path / "model"), "X",
                         dict(folds=2), "smart", "replace")
    next(gen)
    session.cancel.set()
    last = list(gen)[-1]
    assert last.error == "training cancelled"


def test_segments_and_review_with_calibration(session, make_audio, tmp_path):
    from edgebird.training.review import mark

    make_audio("in/a.wav", seconds=30.0)
    list(h.run_batch(session, str(tmp_path / "in"), str(tmp_path / "res"), ["table"], False,
                     True, 1, h.DetectionSettings(min_conf=0.01)))
    text, clips = h.run_segments(str(tmp_path / "in"), str(tmp_path / "res"),
                                 str(tmp_path / "clips"), 0.01, 1.0, 10, 3.0, "confidence")
    assert "clips written" in text and clips and clips[0][1][0] == 48000
    names = h.review_species(str(tmp_path / "clips"))
    path, left = h.next_clip(str(tmp_path / "clips"), names[0])
    assert path and left >= 1
    # review: pretend the higher-scored half was right
    folder = tmp_path / "clips" / "Bird"
    folder.mkdir()
    for i, c in enumerate(np.linspace(0.1, 0.95, 20)):
        p = folder / f"{c:.3f}_{i}_rec_0.00s_3.00s.wav"
        sf.write(p, np.zeros(480, np.float32), 48000)
        mark(p, correct=c > 0.5 or i % 7 == 0)
    text, fig = h.calibration_view(str(tmp_path / "clips"), "Bird", 0.9)
    assert "scores >=" in text and fig is not None
    assert h.next_clip(str(tmp_path / "clips"), "Bird") == (None, 0)


def test_review_undo_and_calibration_math(tmp_path):
    from edgebird.training.review import Calibration, calibrate, mark, pending, unmark

    clip = tmp_path / "Sp" / "0.800_1_rec_0.00s_3.00s.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"")
    moved = mark(clip, True)
    assert moved.parent.name == "Positive" and pending(tmp_path / "Sp") == []
    moved = mark(moved, False)
    assert moved.parent.name == "Negative"
    assert unmark(moved) == clip and pending(tmp_path / "Sp") == [clip]
    cal = Calibration(intercept=-10.0, slope=20.0, n_positive=5, n_negative=5)
    assert abs(cal.probability(cal.threshold(0.9)) - 0.9) < 1e-9
    assert Calibration(5.0, -1.0, 1, 1).threshold(0.9) is None
    with pytest.raises(ValueError, match="right and wrong"):
        calibrate(np.array([0.5, 0.6]), np.array([1, 1]))
    good = calibrate(np.linspace(0, 1, 40), (np.linspace(0, 1, 40) > 0.5).astype(int))
    assert 0.4 < good.threshold(0.9) < 0.8


def test_launch_is_local_and_private(monkeypatch, tmp_path):
    import gradio as gr
    from edgebird.gui import app

    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: seen.update(kw))
    app.launch(workdir=str(tmp_path / "w"))
    assert seen["server_name"] == "127.0.0.1" and seen["share"] is False
    assert seen["allowed_paths"] == [str(tmp_path / "w")]


def test_every_text_has_a_chinese_translation():
    from edgebird.gui.texts import EN, ZH

    assert set(EN) == set(ZH) and all(v.strip() for v in ZH.values())


def test_uploads_from_another_origin_are_refused(tmp_path):
    """Issue 17, item 15: a cross-origin multipart POST (what any web page can send without
    asking) dropped files into Gradio's upload folder. The launched app now refuses it with
    403; its own pages (same origin) and scripts without an Origin header still upload."""
    import socket
    import time

    httpx = pytest.importorskip("httpx")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "edgebird", "gui", "--port", str(port),
                             "--no-browser", "--workdir", str(tmp_path / "w")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                httpx.get(base + "/", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read()[-3000:]
                assert time.time() < deadline, "the GUI did not start within 90 s"
                time.sleep(0.3)
        url = base + "/gradio_api/upload"

        def post(headers):
            return httpx.post(url, files={"files": ("x.wav", b"RIFF....WAVE", "audio/wav")},
                              headers=headers, timeout=10)

        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}"):
            r = post({"Origin": origin})
            assert r.status_code == 403, (origin, r.status_code, r.text)
        r = httpx.post(base + "/gradio_api/queue/join", json={},
                       headers={"Origin": "http://evil.example"}, timeout=10)
        assert r.status_code == 403
        for headers in ({"Origin": base}, {}):
            r = post(headers)
            assert r.status_code == 200, (headers, r.text)
            assert r.json()[0].endswith("x.wav")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_custom_classifier_is_analyzed_at_its_own_thresholds(tmp_path):
    """The GUI used to pass the slider for every class, so a classifier's trained (or
    calibrated) ``_Thresholds.csv`` never applied in the GUI; now it does, as in
    ``edgebird analyze``, unless the user unticks the box; the slider covers the rest."""
    model = tmp_path / "Finches.tflite"
    model.write_bytes(b"")
    custom = h.DetectionSettings(model_mode="custom", classifier=str(model), min_conf=0.6)
    assert custom.resolve()[0].min_conf == 0.6  # no thresholds file: the slider
    (tmp_path / "Finches_Thresholds.csv").write_text("Class,Threshold\nA_a,0.3\n")
    assert custom.resolve()[0].min_conf is None  # the classifier's own
    assert custom.model_name() == "Finches.tflite (its per-class thresholds)"
    off = h.DetectionSettings(model_mode="custom", classifier=str(model), min_conf=0.6,
                              class_thresholds=False)
    assert off.resolve()[0].min_conf == 0.6 and off.model_name() == "Finches.tflite"
    birdnet = h.DetectionSettings(min_conf=0.6)
    assert birdnet.resolve()[0].min_conf == 0.6


def test_the_start_up_line_names_edgebirds_option_not_gradios():
    """Gradio's hint says "set share=True in launch()"; users have --share (issue 18.9)."""
    from edgebird.gui.app import startup_line

    line = startup_line("http://127.0.0.1:7860/", None)
    assert "http://127.0.0.1:7860/" in line and "--share" in line and "launch()" not in line
    assert "https://x.gradio.live" in startup_line("http://127.0.0.1:7860/",
                                                  "https://x.gradio.live")
