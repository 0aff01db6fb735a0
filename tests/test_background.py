"""Issue 21 item 6: ``--background DIR``, the site's own sound as background, and false
positives per hour on held-out site recordings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeModel

from edgebird.audio import AudioSettings
from edgebird.pipeline.engine import EngineSettings
from edgebird.synth import SR, noise_window
from edgebird.training.background import (
    SITE_KIND,
    false_positives_per_hour,
    site_background,
)
from edgebird.training.dataset import DatasetError

CLASSES = ["Alpha a_A", "Beta b_B"]


def site_folder(root, recordings=4, seconds=30, seed=0):
    """``recordings`` files of generated site noise (rain, wind, engine...), 3-s pieces."""
    rng = np.random.default_rng(seed)
    kinds = ("rain", "wind", "engine", "white")
    root.mkdir(parents=True, exist_ok=True)
    for i in range(recordings):
        x = np.concatenate([noise_window(kinds[(i + j) % 4], rng) for j in range(seconds // 3)])
        sf.write(root / f"site_{i}.wav", x.astype(np.float32), SR, subtype="PCM_16")
    return root


class CountingModel(FakeModel):
    """FakeModel that counts the windows it embeds (0 on a rerun: the store has them)."""

    embedded = 0

    def embed(self, batch):
        CountingModel.embedded += len(batch)
        return super().embed(batch)


def _site(folder, store, max_windows=5, seed=0):
    return site_background(folder, store, AudioSettings(), CountingModel(), CLASSES,
                           max_windows, seed, EngineSettings(workers=1), progress=False)


def test_site_windows_are_bounded_seeded_and_a_recording_is_held_out(tmp_path):
    folder = site_folder(tmp_path / "site")
    CountingModel.embedded = 0
    site = _site(folder, tmp_path / "store")
    assert CountingModel.embedded == 40  # every window of the 4 recordings, embedded once
    assert len(site.train) == 5 and set(site.train.kind) == {SITE_KIND}
    assert not site.train.y.any() and site.train.y.shape == (5, 2)
    held = set(np.unique(site.held.groups))
    assert len(held) == 1 and len(site.held) == 10  # every window of the held-out recording
    assert not held & set(site.train.groups)  # never trained on
    assert site.held_seconds == pytest.approx(30.0)
    CountingModel.embedded = 0
    again = _site(folder, tmp_path / "store")  # the same seed: the same rows, from the store
    assert CountingModel.embedded == 0
    np.testing.assert_array_equal(again.train.starts, site.train.starts)
    np.testing.assert_array_equal(again.train.files, site.train.files)
    assert "5 windows sampled from 3 recording(s)" in site.describe()
    everything = _site(folder, tmp_path / "store", max_windows=1000)
    assert len(everything.train) == 30  # all windows of the 3 training recordings


def test_one_recording_cannot_be_held_out_and_the_report_says_so(tmp_path):
    site = _site(site_folder(tmp_path / "site", recordings=1), tmp_path / "store")
    assert site.held is None and "none can be held out" in site.note


def test_bad_background_input_gets_a_clear_message(tmp_path):
    with pytest.raises(DatasetError, match="background folder not found"):
        _site(tmp_path / "nowhere", tmp_path / "store")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(DatasetError, match="holds no audio files"):
        _site(tmp_path / "empty", tmp_path / "store")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(DatasetError, match="none of the background recordings"):
        _site(bad, tmp_path / "store")
    site_folder(bad, recordings=2)  # two good files beside the broken one
    site = _site(bad, tmp_path / "store")
    assert [p.rsplit("/", 1)[-1] for p, _ in site.skipped] == ["broken.wav"]
    assert site.recordings == 2


def test_false_positives_per_hour():
    scores = np.array([[0.9, 0.1], [0.9, 0.8], [0.1, 0.1], [0.2, 0.6]])
    fp = false_positives_per_hour(scores, np.array([0.5, 0.7]), 1800.0, CLASSES)
    assert fp["per_class_per_hour"] == {"Alpha a_A": 4.0, "Beta b_B": 2.0}
    assert fp["any_per_hour"] == 4.0 and fp["any_windows"] == 2  # [1] fires both: once


def test_train_with_background_trains_on_site_rows_and_reports_fp_per_hour(tmp_path,
                                                                          monkeypatch):
    """The whole ``edgebird train --background`` path (real BirdNET, generated songs)."""
    from edgebird.cli import main
    from edgebird.synth import write_dataset
    from edgebird.training import classifier

    seen = {}
    real = classifier.train_classifier

    def spy(feats, s, negatives, *args, **kwargs):
        seen["kinds"] = dict(zip(*np.unique(negatives.kind, return_counts=True), strict=True))
        return real(feats, s, negatives, *args, **kwargs)

    monkeypatch.setattr(classifier, "train_classifier", spy)
    write_dataset(tmp_path / "train", clips_per_class=3, seconds=3.5, seed=0,
                  noise_folder=False)
    site = site_folder(tmp_path / "site", recordings=4, seconds=9)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "train"), "-o", str(out), "--head", "logreg",
            "--folds", "2", "--holdout-species", "0", "--synthetic-negatives", "4",
            "--background", str(site), "--background-windows", "7",
            "--store", str(tmp_path / "store"), "--quiet"]
    assert main(args) == 0
    assert seen["kinds"] == {"synthetic": 4, SITE_KIND: 7}  # bounded: 9 windows available
    report = (out / "REPORT.md").read_text()
    assert "**Site background** (`--background`): 1 of 4 site recordings" in report
    assert "windows per hour" in report and "windows per class (as trained):" in report
    fp = json.loads((out / "metrics.json").read_text())["site_background_false_positives"]
    assert fp["held_out_recordings"] == 1 and fp["windows"] == 3
    assert fp["hours"] == pytest.approx(9 / 3600)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(fp["per_class_per_hour"]) == set(metrics["classes"])
    assert {n["recordings"] for n in metrics["windows_per_class"].values()} == {3}


def test_train_refuses_a_missing_background_before_any_work(tmp_path, capsys):
    from edgebird.cli import EXIT_USAGE, main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "train", clips_per_class=2, seconds=3.5, seed=0)
    assert main(["train", str(tmp_path / "train"), "-o", str(tmp_path / "out"),
                 "--background", str(tmp_path / "nowhere"), "--store",
                 str(tmp_path / "store"), "--quiet"]) == EXIT_USAGE
    assert "background folder not found" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()  # refused before embedding


@pytest.mark.integration
def test_devbirds_other_species_as_site_background(devbirds, tmp_path):
    """Five devbirds species train; the other five are the site: real recordings without the
    targets. Their windows train as background (all of them: fewer than the bound) and the
    held-out quarter gets a false-positives-per-hour figure in metrics.json."""
    import os

    from edgebird.training.classifier import train_from_data
    from edgebird.training.train import TrainSettings

    five, other = tmp_path / "five", tmp_path / "other"
    five.mkdir()
    other.mkdir()
    for i, sp in enumerate(sorted(d for d in devbirds.iterdir() if d.is_dir())):
        os.symlink(sp, (five if i < 5 else other) / sp.name)
    run = train_from_data(five, tmp_path / "out",
                          TrainSettings(head="logreg", folds=2, holdout_species=0,
                                        background=str(other)),
                          engine=EngineSettings(), store=tmp_path / "store", progress=False,
                          echo=lambda m: None)
    fp = run.result.site_fp
    assert fp["recordings"] == 50 and fp["held_out_recordings"] == 12
    assert fp["trained_windows"] == 76  # 38 recordings x 2 windows, under the bound of 500
    assert fp["hours"] == pytest.approx(12 * 6 / 3600, rel=0.02)
    assert np.isfinite(fp["any_per_hour"]) and len(fp["per_class_per_hour"]) == 5
    assert "site background: 76 windows sampled from 38 recording(s)" in run.report.read_text()
