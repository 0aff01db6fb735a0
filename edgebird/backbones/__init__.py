"""Backbones: pretrained networks behind one small interface.

The pipeline (engine, store, training, analysis) only sees ``EmbeddingModel``; adding a
second backbone (a hand-crafted baseline, another network) means adding a module here and a
line in ``BACKBONES``, nothing else.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EmbeddingModel(Protocol):
    """A model that turns fixed-length mono windows into embeddings (and, if it has them, logits).

    ``embed`` takes float32 ``[n, segment_samples]`` for any n and returns
    ``(embeddings [n, embedding_dim], logits [n, len(labels)])``. Implementations must be
    picklable before first use (the engine ships them to worker processes) and load their
    weights lazily, once per process.
    """

    name: str
    sample_rate: int
    segment_samples: int
    embedding_dim: int

    @property
    def labels(self) -> list[str]: ...

    @property
    def fingerprint(self) -> str:
        """Identifies the weights: part of every cache key, so models never mix."""
        ...

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


#: Backbone names ``get_backbone`` knows, with what each is.
BACKBONES = {
    "birdnet": "BirdNET V2.4's embedding (model/GLOBAL_AVG_POOL/Mean, 1,024 values)",
    "birdnet-fusion": "pooled activations of several BirdNET layers, concatenated "
                      "(backbones/birdnet.py: FUSION_LAYERS)",
    "handcrafted": "log-mel and MFCC statistics (librosa): the no-pretraining baseline",
}


def get_backbone(name: str = "birdnet", **kwargs) -> EmbeddingModel:
    """Build a backbone by name (one of ``BACKBONES``)."""
    if name in ("birdnet", "birdnet-v2.4"):
        from edgebird.backbones.birdnet.model import BirdNET

        return BirdNET(**kwargs)
    if name == "birdnet-fusion":
        from edgebird.backbones.birdnet.model import FUSION_LAYERS, BirdNET

        kwargs.setdefault("layers", FUSION_LAYERS)
        return BirdNET(**kwargs)
    if name == "handcrafted":
        from edgebird.backbones.handcrafted import HandcraftedFeatures

        kwargs.pop("batch_size", None)  # no interpreter: nothing to batch
        kwargs.pop("num_threads", None)
        return HandcraftedFeatures(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
