"""The command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgebird import __version__
from edgebird.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgebird", *args], capture_output=True,
                          text=True, timeout=300)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"edgebird {__version__}"
    r = run("embed", "--help")
    assert r.returncode == 0 and "--overlap" in r.stdout and "--crop-mode" in r.stdout


def test_help_imports_no_model_runtime_and_no_tensorflow():
    code = ("import sys; from edgebird.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('tensorflow', 'ai_edge_litert', 'keras') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "embed" in capsys.readouterr().out


def test_bad_settings_are_a_clear_usage_error(tmp_path, capsys):
    assert main(["embed", str(tmp_path), "-o", str(tmp_path / "o"), "--overlap", "3"]) == 2
    assert "overlap must be >= 0 and < 3 s" in capsys.readouterr().err


def test_embed_exit_status_says_whether_files_failed(tmp_path, make_audio):
    make_audio("in/ok.wav", seconds=3.0)
    r = run("embed", str(tmp_path / "in"), "-o", str(tmp_path / "st"), "-q", "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "1 embedded" in r.stdout
    (tmp_path / "in" / "broken.wav").write_text("nope")
    r = run("embed", str(tmp_path / "in"), "-o", str(tmp_path / "st"), "-q", "--workers", "1",
            "--csv", str(tmp_path / "csv"))
    assert r.returncode == 1
    assert "broken.wav: not an audio file, or damaged" in r.stdout + r.stderr
    assert "0 embedded, 1 from the store, 1 failed" in r.stdout
    assert (tmp_path / "csv" / "ok.wav.embeddings.csv").is_file()


def test_demo(tmp_path):
    from edgebird.demo import run_demo
    from edgebird.pipeline.engine import EngineSettings

    lines: list[str] = []
    result = run_demo(tmp_path / "demo", clips_per_class=3, progress=False, echo=lines.append,
                      engine=EngineSettings(workers=1), train=False)
    assert result["n"] == 15 and result["accuracy"] >= 0.8
    assert result["plot"].is_file() and result["plot"].stat().st_size > 10_000
    assert any("nearest-centroid accuracy" in line for line in lines)


def test_train_refuses_bad_data_before_any_work(tmp_path, make_audio):
    make_audio("d/Only bird/a.wav", seconds=2.0)
    r = run("train", str(tmp_path / "d"), "-o", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "only one class ('Only bird') and no background" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_inspect_refuses_what_is_not_a_model(tmp_path, make_audio):
    p = make_audio("x.wav", seconds=1.0)
    r = run("inspect", str(p))
    assert r.returncode == 1 and "is not a TFLite model" in r.stderr


def test_inspect_a_head_without_tensorflow(tmp_path):
    import numpy as np

    from edgebird.backbones.birdnet import graph as tflite_graph

    rng = np.random.default_rng(0)
    model = tmp_path / "Head.tflite"
    model.write_bytes(tflite_graph.dense_head_model(
        [(rng.standard_normal((1024, 2)).astype(np.float32), np.zeros(2, np.float32), False)]))
    (tmp_path / "Head_Labels.txt").write_text("A_a\nB_b\n")
    code = ("import sys; "
            "from edgebird.training.model_export import inspect_model, format_inspection; "
            f"print(format_inspection(inspect_model({str(model)!r}))); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "head only" in r.stdout and "A_a" in r.stdout
    assert r.stdout.strip().endswith("False False")


def test_species_command(tmp_path):
    r = run("species", "-o", str(tmp_path), "--lat", "52.5", "--lon", "13.4", "--week", "20")
    assert r.returncode == 0, r.stderr
    labels = (tmp_path / "species_list.txt").read_text().splitlines()
    assert "Turdus merula_Eurasian Blackbird" in labels and str(len(labels)) in r.stdout
    r = run("species", "-o", str(tmp_path / "x.txt"), "--lat", "95", "--lon", "0")
    assert r.returncode == 2 and "latitude must be in [-90, 90]" in r.stderr


def test_analyze_and_segments_from_the_command_line(tmp_path, make_audio, capsys):
    make_audio("rec/a.wav", seconds=7.0, sr=44100)
    (tmp_path / "rec" / "broken.wav").write_text("not audio")
    out, clips = tmp_path / "res", tmp_path / "clips"
    code = main(["analyze", str(tmp_path / "rec"), "-o", str(out), "--rtype", "raven", "csv",
                 "--min-conf", "0.01", "--combine", "-q", "--workers", "1"])
    text = capsys.readouterr()
    assert code == 1 and "broken.wav" in text.out  # one file failed: status 1, batch went on
    assert (out / "a.BirdNET.selection.table.txt").is_file()
    assert (out / "BirdNET_SelectionTable.txt").is_file()
    assert main(["segments", str(tmp_path / "rec"), "-r", str(out), "-o", str(clips),
                 "--min-conf", "0.01", "--max-segments", "2"]) == 0
    assert len(list(clips.rglob("*.wav"))) >= 1


def test_analyze_usage_errors(tmp_path, capsys):
    base = ["analyze", str(tmp_path), "-o", str(tmp_path / "o")]
    for extra, message in [(["--sensitivity", "2"], "sensitivity must be in [0.5, 1.5]"),
                           (["--lat", "50"], "give both --lat and --lon"),
                           (["--week", "3"], "--week needs --lat and --lon"),
                           (["--rtype", "pdf"], "unknown result type"),
                           (["--lat", "95", "--lon", "0"], "latitude must be in"),
                           (["-c", str(tmp_path / "none.tflite")], "classifier not found")]:
        assert main(base + extra) == 2, extra
        assert message in capsys.readouterr().err, extra


@pytest.mark.integration
def test_demo_end_to_end_trains_and_analyzes(tmp_path):
    """The README's first command: every step, training and analysis included."""
    pytest.importorskip("tensorflow")
    from edgebird.core.writers.readers import read_results
    from edgebird.demo import SCENE, run_demo

    lines: list[str] = []
    result = run_demo(tmp_path / "demo", clips_per_class=4, progress=False,
                      echo=lines.append)
    assert result["training"] is not None and result["analysis"].analyzed == 1
    table = tmp_path / "demo" / "results" / "field_recording.BirdNET.selection.table.txt"
    dets = read_results(table)[1]
    truth = [SCENE[int(d.start // 6)] for d in dets]
    assert all(d.label == t for d, t in zip(dets, truth, strict=True)), lines[-12:]
    assert len({d.label for d in dets}) >= 3, lines[-12:]  # most songs found, no noise hits
