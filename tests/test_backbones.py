"""The backbone contract: every ``EmbeddingModel`` (BirdNET, its fusion variant, the
hand-crafted baseline, both classifier models and the test fake) declares what callers use,
returns ``Embeddings``, and survives pickling to a worker with the same numbers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel

from edgebird.backbones import EmbeddingModel, Embeddings, get_backbone
from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR, birdnet_files
from edgebird.pipeline.models import HeadModel, StandaloneModel, classifier_files

LABELS = ["Alpha a_A", "Beta b_B"]


def _layers() -> list:
    rng = np.random.default_rng(0)
    return [(rng.normal(0, 0.05, (1024, 2)).astype(np.float32), np.zeros(2, np.float32),
             False)]


def _classifier(folder: Path, name: str, content: bytes):
    model = folder / f"{name}.tflite"
    model.write_bytes(content)
    (folder / f"{name}_Labels.txt").write_text("\n".join(LABELS) + "\n")
    return classifier_files(model)


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("classifiers")
    head = _classifier(folder, "Custom_head", tflite_graph.dense_head_model(_layers()))
    whole = tflite_graph.append_dense_head(birdnet_files().model.read_bytes(),
                                           EMBEDDING_TENSOR, _layers())
    return {"head": head, "standalone": _classifier(folder, "Custom", whole)}


def _build(kind: str, birdnet, classifiers) -> EmbeddingModel:
    if kind == "birdnet":
        return birdnet
    if kind == "head":
        return HeadModel(classifiers["head"], birdnet)
    if kind == "standalone":
        return StandaloneModel(classifiers["standalone"], batch_size=2)
    if kind == "fake":
        return FakeModel()
    return get_backbone(kind, **({"batch_size": 2} if kind != "handcrafted" else {}))


KINDS = ["birdnet", "birdnet-fusion", "handcrafted", "head", "standalone", "fake"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_backbone_keeps_the_contract(kind, birdnet, classifiers):
    model = _build(kind, birdnet, classifiers)
    assert isinstance(model, EmbeddingModel)
    assert model.name and isinstance(model.fingerprint, str) and model.fingerprint
    assert isinstance(model.batch_size, int) and model.batch_size >= 1
    assert isinstance(model.num_threads, int) and model.num_threads >= 1
    assert model.model_path is None or Path(model.model_path).is_file()
    assert model.has_embeddings == (model.embedding_dim > 0)
    model.prepare()
    model.load()
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((3, model.segment_samples))).astype(np.float32)
    got = model.embed(x)
    assert isinstance(got, Embeddings)
    assert got.embeddings.shape == (3, model.embedding_dim)
    assert got.logits.shape == (3, len(model.labels))
    assert got.embeddings.dtype == got.logits.dtype == np.float32
    clone = pickle.loads(pickle.dumps(model))  # what a worker process receives
    assert clone.fingerprint == model.fingerprint
    again = clone.embed(x)
    np.testing.assert_array_equal(again.embeddings, got.embeddings)
    np.testing.assert_array_equal(again.logits, got.logits)


def test_classifier_models_delegate_to_their_files_and_backbone(birdnet, classifiers):
    head = HeadModel(classifiers["head"], birdnet)
    assert head.batch_size == birdnet.batch_size and head.num_threads == birdnet.num_threads
    assert head.model_path == classifiers["head"].model and head.labels == LABELS
    assert head.has_embeddings and head.embedding_dim == 1024
    standalone = StandaloneModel(classifiers["standalone"])
    assert not standalone.has_embeddings and standalone.embedding_dim == 0
    assert birdnet.model_path == birdnet_files().model


def test_a_backbone_must_declare_what_it_cannot_default():
    class Half(EmbeddingModel):
        name = "half"

        def embed(self, batch):
            return Embeddings(batch, batch)

    with pytest.raises(TypeError, match="abstract"):
        Half()
