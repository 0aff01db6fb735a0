"""BirdNET(layers=...): pooled intermediate layers ("early fusion") against the plain model."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from conftest import chirp

from edgebird.backbones import get_backbone
from edgebird.backbones.birdnet import frontend
from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.backbones.birdnet.files import (
    EMBEDDING_TENSOR,
    birdnet_files,
    sha256_of,
    split_tolerance,
)
from edgebird.backbones.birdnet.fusion import (
    FUSION_LAYERS,
    check_layers,
    list_layers,
    pool_layer,
    pooled_size,
)
from edgebird.backbones.birdnet.model import BirdNET
from edgebird.core.runtime import make_interpreter

#: channels of the three block outputs in FUSION_LAYERS, then the embedding
WIDTHS = (2 * 72, 2 * 108, 2 * 192, 1024)


@pytest.fixture(scope="module")
def fused() -> BirdNET:
    return BirdNET(num_threads=1, batch_size=4, layers=FUSION_LAYERS)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """Five different chirps in noise (one very quiet): one full batch of 4 and a padded one."""
    rng = np.random.default_rng(1)
    x = np.stack([chirp(3.0, 48000, f0=400 + 900 * i, f1=9500 - 700 * i)[:, 0]
                  for i in range(5)]) + 0.05 * rng.standard_normal((5, 144000))
    x[4] *= 0.01
    return x.astype(np.float32)


def reference_tensors(batch: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The unmodified model with XNNPACK off, every tensor kept, the named ones read by index.
    Without ``preserve_all_tensors`` the memory planner reuses an intermediate tensor's memory
    and reading it gives a later tensor's values (off by 2x the layer's scale, silently)."""
    interp = make_interpreter(model_path=str(birdnet_files().model), xnnpack=False,
                              preserve_all_tensors=True)
    interp.resize_tensor_input(0, list(batch.shape))
    interp.allocate_tensors()
    interp.set_tensor(0, batch)
    interp.invoke()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    return {n: interp.get_tensor(index[n]).copy() for n in names}


def parts(features: np.ndarray, widths=WIDTHS) -> list[np.ndarray]:
    return np.split(features, np.cumsum(widths)[:-1], axis=1)


def test_fusion_dimension_is_known_from_the_file_and_embed_returns_it(fused, windows):
    assert fused.embedding_dim == sum(WIDTHS) == 1768
    assert fused._interpreter is None  # known before any interpreter exists
    assert get_backbone("birdnet-fusion", batch_size=4).embedding_dim == 1768
    features, logits = fused.embed(windows)
    assert features.shape == (5, 1768) and features.dtype == np.float32
    assert logits.shape == (5, 6522)
    assert fused._split is not None  # the split check accepted the extra outputs
    empty, _ = fused.embed(np.zeros((0, 144000), np.float32))
    assert empty.shape == (0, 1768)


def test_fused_features_equal_the_plain_model(fused, birdnet, windows):
    """The embedding part equals plain BirdNET's; each block output, pooled, equals the same
    tensor read from the unmodified model run with TFLite's plain kernels.

    Tolerance for the blocks: 1e-4 of the layer's largest pooled value. The numpy front end
    and XNNPACK's reordered sums change the float32 rounding (~1e-7 per operation), which the
    ~100 layers before stage 4 grow to at most ~6e-6 of the layer's scale (measured: 2e-4
    absolute on values up to 35). A per-element relative bound means nothing for means near
    zero; a wrong layer, pooling axis or order is off by the order of the scale itself."""
    features, logits = fused.embed(windows)
    embs, plain_logits = birdnet.embed(windows)
    np.testing.assert_allclose(parts(features)[-1], embs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(logits, plain_logits, rtol=0, atol=1e-4)
    ref = reference_tensors(windows, list(FUSION_LAYERS))
    for name, got in zip(FUSION_LAYERS[:3], parts(features)[:3]):  # noqa: B905 - py3.9
        assert ref[name].ndim == 4
        want = pool_layer(ref[name])
        c = ref[name].shape[-1]
        np.testing.assert_allclose(want[:, :c], ref[name].mean(axis=(1, 2)), atol=1e-5)
        np.testing.assert_array_equal(want[:, c:], ref[name].max(axis=(1, 2)))
        scale = float(np.max(np.abs(want)))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * scale, err_msg=name)
    np.testing.assert_allclose(parts(features)[-1], ref[EMBEDDING_TENSOR], rtol=0, atol=1e-5)


def test_fingerprints_and_cache_files_tell_layer_sets_apart(fused, birdnet):
    sha = sha256_of(birdnet_files().model)[:16]
    assert birdnet.fingerprint == f"birdnet-v2.4:{sha}"  # plain BirdNET: as it always was
    other = BirdNET(layers=FUSION_LAYERS[:2])
    reordered = BirdNET(layers=tuple(reversed(FUSION_LAYERS)))
    prints = {birdnet.fingerprint, fused.fingerprint, other.fingerprint, reordered.fingerprint}
    assert len(prints) == 4
    assert fused.fingerprint == BirdNET(layers=list(FUSION_LAYERS)).fingerprint
    assert other.embedding_dim == 2 * (72 + 108)
    birdnet.prepare()
    fused.prepare()
    assert re.fullmatch(rf"{birdnet_files().model.stem}\.emb1\.{sha}\.tflite",
                        birdnet._rewritten.name)
    assert fused._rewritten != birdnet._rewritten
    assert fused._split[0] != birdnet._split[0]


def test_unknown_or_unusable_layers_are_refused_when_built():
    with pytest.raises(KeyError, match=r"no tensor named 'model/BLOCK_2-9_ADD/add'.*similar"):
        BirdNET(layers=("model/BLOCK_2-9_ADD/add",))
    with pytest.raises(ValueError, match="not computed by the model"):
        BirdNET(layers=("model/POST_BN_1/FusedBatchNormV3;model/POST_CONV_1/Conv2D",))
    with pytest.raises(ValueError, match="not a float32"):
        BirdNET(layers=("model/MEL_SPEC1/stft/frame/Shape",))
    with pytest.raises(ValueError, match="more than once"):
        BirdNET(layers=(EMBEDDING_TENSOR, EMBEDDING_TENSOR))
    with pytest.raises(ValueError, match="channel count is not fixed"):
        pooled_size((-1, -1), "x")


def test_a_fused_model_pickles_and_still_embeds(fused, windows):
    fresh = BirdNET(batch_size=4, layers=FUSION_LAYERS)  # as the engine ships it: unused
    want, _ = fused.embed(windows[:2])
    for model in (fresh, fused):
        data = pickle.dumps(model)
        assert len(data) < 10_000  # names and paths, no interpreter, no model bytes
        clone = pickle.loads(data)
        assert clone._interpreter is None and clone.fingerprint == fused.fingerprint
        assert clone.layers == FUSION_LAYERS and clone.embedding_dim == 1768
        got, _ = clone.embed(windows[:2])
        np.testing.assert_array_equal(got, want)


def test_list_layers_gives_the_fusion_layers_with_their_shapes():
    layers = list_layers()
    shapes = dict(layers)
    assert shapes["model/BLOCK_2-4_ADD/add"] == [1, 12, 32, 72]
    assert shapes["model/BLOCK_3-5_ADD/add"] == [1, 6, 16, 108]
    assert shapes["model/BLOCK_4-4_ADD/add"] == [1, 3, 8, 192]
    assert shapes[EMBEDDING_TENSOR] == [1, 1024]
    names = [n for n, _ in layers]
    assert names.index("model/BLOCK_2-4_ADD/add") < names.index("model/BLOCK_4-4_ADD/add")
    assert frontend.SPECTROGRAM_TENSOR not in shapes and "INPUT" not in shapes
    assert not any("MEL_SPEC" in n or "/Shape" in n for n in names)
    # every listed tensor is accepted, with the width its run-time shape gives
    widths, in_front_end = check_layers(birdnet_files().model, names)
    assert not in_front_end
    assert list(widths) == [pooled_size(s) for _, s in layers]


def test_split_tolerance_scales_only_for_large_extra_outputs():
    assert split_tolerance(EMBEDDING_TENSOR, 50.0) == 1e-4
    assert split_tolerance("Identity", 50.0) == 1e-3
    assert split_tolerance("model/BLOCK_2-4_ADD/add", 1.0) == 1e-3  # the old default
    assert split_tolerance("model/BLOCK_4-4_ADD/add", 50.0) == pytest.approx(5e-3)


def test_a_layer_inside_the_front_end_runs_the_whole_graph(tmp_path, monkeypatch, windows):
    """The spectrogram is the split model's input, not something it computes: such a layer
    set runs whole (and ``frontend.parse`` refuses to cut a graph with such an output)."""
    monkeypatch.setenv("EDGEBIRD_CACHE_DIR", str(tmp_path))
    spec = frontend.SPECTROGRAM_TENSOR
    whole = tflite_graph.add_outputs(birdnet_files().model.read_bytes(), [spec])
    assert frontend.parse(whole) is None
    model = BirdNET(batch_size=4, layers=(spec, EMBEDDING_TENSOR))
    assert model.embedding_dim == 2 * 2 + 1024
    features, _ = model.embed(windows[:3])
    assert model._split is None and model._frontend is None
    assert not list(tmp_path.glob("*.split*"))
    ref = reference_tensors(windows[:3], [spec, EMBEDDING_TENSOR])
    got_spec, got_emb = parts(features, (4, 1024))
    want = pool_layer(ref[spec])
    np.testing.assert_allclose(got_spec, want, rtol=0, atol=1e-4 * np.max(np.abs(want)))
    np.testing.assert_allclose(got_emb, ref[EMBEDDING_TENSOR], rtol=0, atol=1e-5)
