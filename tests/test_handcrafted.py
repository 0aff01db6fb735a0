"""The hand-crafted backbone: a second ``EmbeddingModel`` through the same engine and store.

All audio is made here (tones, chirps, noise), so these tests need neither BirdNET nor data.
"""

from __future__ import annotations

import dataclasses
import pickle
import sys

import numpy as np
import pytest
import soundfile as sf
from conftest import chirp

from edgebird.audio import SAMPLE_RATE, SEGMENT_SAMPLES, AudioSettings, probe
from edgebird.backbones import EmbeddingModel, get_backbone
from edgebird.backbones import handcrafted as hc
from edgebird.backbones.handcrafted import HandcraftedFeatures
from edgebird.pipeline import engine as eng

SR = SAMPLE_RATE


def tone(freq: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(SEGMENT_SAMPLES) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(n: int, amp: float, seed: int = 0) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal((n, SEGMENT_SAMPLES))) \
        .astype(np.float32)


@pytest.fixture(scope="module")
def model() -> HandcraftedFeatures:
    return HandcraftedFeatures()


def test_shape_dtype_and_layout(model):
    x = np.stack([tone(1000), tone(3000), noise(1, 0.1)[0]])
    embs, logits = model.embed(x)
    assert embs.shape == (3, model.embedding_dim) and embs.dtype == np.float32
    assert logits.shape == (3, 0) and logits.dtype == np.float32
    assert model.embedding_dim == 2 * 64 + 4 * 20 + 10 == 218
    assert model.labels == []
    # The named blocks tile the embedding exactly, in order.
    spans = list(model.layout().values())
    assert spans[0].start == 0 and spans[-1].stop == model.embedding_dim
    assert all(a.stop == b.start for a, b in zip(spans, spans[1:], strict=False))
    small = HandcraftedFeatures(n_mels=32, n_mfcc=13)
    assert small.embedding_dim == 2 * 32 + 4 * 13 + 10
    assert small.embed(x[:1])[0].shape == (1, small.embedding_dim)
    assert model.embed(np.zeros((0, SEGMENT_SAMPLES), np.float32))[0].shape == (0, 218)


def test_is_an_embedding_model():
    m = get_backbone("handcrafted", batch_size=4, num_threads=2)  # engine options are dropped
    assert isinstance(m, HandcraftedFeatures) and isinstance(m, EmbeddingModel)
    assert m.sample_rate == SR and m.segment_samples == SEGMENT_SAMPLES


@pytest.mark.parametrize("amp", [0.0, 1e-12, 1e-9, 1e-6])
def test_finite_on_silence_and_near_silence(model, amp):
    x = noise(2, amp, seed=3)
    x[1, : SEGMENT_SAMPLES // 3] = 0.0  # a zero-padded tail, as the last window of a file
    # no hidden divide-by-zero / log(0) / NaN either; underflow to a denormal or zero is
    # harmless (numpy >= 2.3 reports it from matmul on 1e-24 powers)
    with np.errstate(divide="raise", over="raise", invalid="raise", under="ignore"):
        embs, _ = model.embed(x)
    assert np.isfinite(embs).all()
    if amp == 0.0:
        lay = model.layout()
        floor = 10 * np.log10(model.amin)
        np.testing.assert_allclose(embs[0, lay["log_mel_mean"]], floor, rtol=1e-5)
        assert np.all(embs[0, lay["log_mel_std"]] < 1e-3)


def test_finite_on_damaged_samples(model):
    x = noise(1, 0.1)
    x[0, 1000:1010] = np.nan
    x[0, 2000] = np.inf
    assert np.isfinite(model.embed(x)[0]).all()


def test_deterministic_and_independent_of_the_batch(model):
    """The engine batches windows of different files: a window's features must not depend
    on its neighbours, to the last bit (the store's resume relies on it)."""
    rng = np.random.default_rng(1)
    x = (rng.uniform(0, 0.5, (11, 1)) * rng.standard_normal((11, SEGMENT_SAMPLES))) \
        .astype(np.float32)
    x[2] = 0.0
    x[5] = tone(4000)
    alone = np.concatenate([model.embed(x[i:i + 1])[0] for i in range(len(x))])
    np.testing.assert_array_equal(model.embed(x)[0], model.embed(x.copy())[0])
    for size in (2, 4, 11):
        batched = np.concatenate([model.embed(x[i:i + size])[0] for i in range(0, 11, size)])
        np.testing.assert_array_equal(batched, alone)
    assert not np.array_equal(alone[0], alone[1])


def test_spectral_centroid_follows_the_pitch(model):
    embs, _ = model.embed(np.stack([tone(2000), tone(6000)]))
    lay = model.layout()
    centroid = embs[:, lay["centroid_mean"]].ravel()
    assert centroid[0] < centroid[1]
    np.testing.assert_allclose(centroid, [2000, 6000], rtol=0.05)
    rolloff = embs[:, lay["rolloff_mean"]].ravel()
    assert rolloff[0] < rolloff[1]
    # The loudest mel band of the higher tone is a higher band.
    mel = embs[:, lay["log_mel_mean"]]
    assert mel[0].argmax() < mel[1].argmax()
    # A pure tone is far less flat than white noise.
    flat_tone = embs[0, lay["flatness_mean"]][0]
    flat_noise = model.embed(noise(1, 0.1))[0][0, lay["flatness_mean"]][0]
    assert flat_tone < 0.1 * flat_noise


def test_level_is_kept(model):
    """Absolute levels, not per-window normalised: a louder copy has a higher log-mel."""
    x = noise(1, 0.01, seed=4)
    embs, _ = model.embed(np.concatenate([x, 10 * x]))
    mel = embs[:, model.layout()["log_mel_mean"]]
    np.testing.assert_allclose(mel[1] - mel[0], 20.0, atol=0.1)  # x10 amplitude = +20 dB


def test_fingerprint_changes_with_every_parameter(model, monkeypatch):
    changed = {"n_mels": 40, "n_mfcc": 13, "fmin": 0.0, "fmax": 12000.0, "n_fft": 1024,
               "hop_length": 256, "roll_percent": 0.9, "amin": 1e-8}
    params = {f.name for f in dataclasses.fields(HandcraftedFeatures) if f.init}
    assert params == set(changed), "a new parameter needs a case here"
    prints = {model.fingerprint}
    for name, value in changed.items():
        prints.add(HandcraftedFeatures(**{name: value}).fingerprint)
    assert len(prints) == 1 + len(changed)
    assert HandcraftedFeatures().fingerprint == model.fingerprint
    same = HandcraftedFeatures(fmin=150, fmax=15000, n_mels=64.0)  # e.g. parsed from a CLI
    assert same.fingerprint == model.fingerprint and same == model
    assert ":" not in model.fingerprint and "/" not in model.fingerprint  # used in file names
    before = model.fingerprint
    monkeypatch.setattr(hc, "FEATURES_VERSION", hc.FEATURES_VERSION + 1)
    assert HandcraftedFeatures().fingerprint != before


@pytest.mark.parametrize("kwargs", [
    {"n_mfcc": 0}, {"n_mfcc": 80}, {"n_mels": 0}, {"fmin": 15000.0}, {"fmax": 30000.0},
    {"hop_length": 0}, {"hop_length": 40000}, {"n_fft": 8}, {"roll_percent": 1.0},
    {"amin": 0.0}, {"fmin": 100.0, "fmax": 110.0},
])
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        HandcraftedFeatures(**kwargs)


def test_rejects_bad_input(model):
    with pytest.raises(ValueError, match="expected"):
        model.embed(np.zeros(SEGMENT_SAMPLES, np.float32))
    with pytest.raises(ValueError, match="expected"):
        model.embed(np.zeros((2, SEGMENT_SAMPLES - 1), np.float32))


def test_pickle_round_trip(model):
    x = np.stack([tone(2500), noise(1, 0.05)[0]])
    before, _ = model.embed(x)  # the mel filterbank is built now...
    blob = pickle.dumps(model)
    assert len(blob) < 2000  # ...and not shipped to workers
    clone = pickle.loads(blob)
    assert clone == model and clone.fingerprint == model.fingerprint
    np.testing.assert_array_equal(clone.embed(x)[0], before)


def test_missing_librosa_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)  # makes ``import librosa`` fail
    with pytest.raises(ImportError, match=r"edgebird\[experiment\]"):
        HandcraftedFeatures().embed(np.zeros((1, SEGMENT_SAMPLES), np.float32))


def test_engine_keeps_empty_logits(tmp_path, model):
    path = tmp_path / "a.wav"
    sf.write(path, chirp(7.0, SR), SR)
    info = probe(path)
    starts = np.array([0, 3 * SR, 6 * SR])
    r = eng.run_task(eng.Task(0, 0, info, starts), model, AudioSettings(), batch_size=2,
                     keep_logits=True)
    assert r.embeddings.shape == (3, model.embedding_dim) and r.logits.shape == (3, 0)


def test_embed_files_end_to_end(tmp_path, model):
    from edgebird.pipeline.embed import embed_files

    wav = tmp_path / "in" / "song.wav"
    wav.parent.mkdir()
    sf.write(wav, chirp(7.0, SR), SR)  # windows at 0, 3 and 6 s (the last one padded)
    backbone = get_backbone("handcrafted")
    s = embed_files([wav], tmp_path / "store", AudioSettings(), eng.EngineSettings(workers=1),
                    model=backbone, progress=False)
    assert s.computed == 1 and not s.failed
    (entry,) = s.entries
    assert entry.meta["embedding_dim"] == backbone.embedding_dim
    assert entry.meta["model"] == "handcrafted"
    assert entry.meta["model_fingerprint"] == backbone.fingerprint
    starts, embs = entry.load()
    np.testing.assert_allclose(starts, [0, 3, 6])
    assert embs.shape == (3, backbone.embedding_dim) and np.isfinite(embs).all()
    # What the store holds is what the model gives for the file's windows.
    x = sf.read(wav, dtype="float32")[0]
    x = np.concatenate([x, np.zeros(2 * SEGMENT_SAMPLES, np.float32)])
    direct, _ = model.embed(np.stack([x[i * 3 * SR:i * 3 * SR + SEGMENT_SAMPLES]
                                      for i in range(3)]))
    np.testing.assert_allclose(embs, direct, rtol=1e-4, atol=1e-3)
    again = embed_files([wav], tmp_path / "store", AudioSettings(),
                        eng.EngineSettings(workers=1), model=backbone, progress=False)
    assert again.cached == 1 and again.computed == 0


def test_features_do_not_depend_on_blas_threads(model):
    """BirdNET's front end limits BLAS process-wide; a window's features must not change with
    what ran before in the process, nor with the machine's cores."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.stack([tone(2500), noise(1, 0.05)[0], tone(9000)])
    free, _ = model.embed(x)
    for n in (1, 2, 4):
        with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
            np.testing.assert_array_equal(model.embed(x)[0], free)


def test_worker_processes_give_the_same_numbers(tmp_path, model):
    """Two files in two worker processes (the model is shipped to them) match one process."""
    from edgebird.pipeline.embed import embed_files

    files = []
    for i, (f0, f1) in enumerate([(500, 4000), (3000, 12000)]):
        p = tmp_path / "in" / f"f{i}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, chirp(6.5, SR, f0, f1), SR)
        files.append(p)
    results = []
    for workers, store in [(1, "one"), (2, "two")]:
        s = embed_files(files, tmp_path / store, AudioSettings(),
                        eng.EngineSettings(workers=workers), model=model, progress=False)
        assert s.computed == 2 and not s.failed
        results.append({e.meta["relative"]: e.load()[1] for e in s.entries})
    assert results[0].keys() == results[1].keys()
    for rel in results[0]:
        np.testing.assert_array_equal(results[0][rel], results[1][rel])


def test_synthetic_negatives(tmp_path, model):
    from edgebird.training.features import synthetic_negatives

    f = synthetic_negatives(model, ["a", "b"], 6, seed=0)
    assert f.x.shape == (6, model.embedding_dim) and f.x.dtype == np.float32
    assert np.isfinite(f.x).all() and f.y.shape == (6, 2) and not f.y.any()
    assert len({row.tobytes() for row in f.x}) == 6
    cached = synthetic_negatives(model, ["a", "b"], 6, seed=0, cache=tmp_path)
    assert any(model.fingerprint in p.name for p in tmp_path.iterdir())
    np.testing.assert_array_equal(cached.x, f.x)
    np.testing.assert_array_equal(synthetic_negatives(model, ["a", "b"], 6, seed=0,
                                                      cache=tmp_path).x, f.x)
