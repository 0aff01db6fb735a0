"""Backbones: pretrained networks behind one small interface.

The pipeline (engine, store, training, analysis) only sees ``EmbeddingModel`` (``base``);
adding a backbone (a hand-crafted baseline, another network) means subclassing it in a module
here and adding a line to ``BACKBONES``, nothing else. BirdNET V2.4 is the ``birdnet`` folder.
"""

from __future__ import annotations

from edgebird.backbones.base import EmbeddingModel, Embeddings

__all__ = ["BACKBONES", "EmbeddingModel", "Embeddings", "get_backbone"]

#: Backbone names ``get_backbone`` knows, with what each is.
BACKBONES = {
    "birdnet": "BirdNET V2.4's embedding (model/GLOBAL_AVG_POOL/Mean, 1,024 values)",
    "birdnet-fusion": "pooled activations of several BirdNET layers, concatenated "
                      "(backbones/birdnet/fusion.py: FUSION_LAYERS)",
    "handcrafted": "log-mel and MFCC statistics (librosa): the no-pretraining baseline",
}


def get_backbone(name: str = "birdnet", **kwargs) -> EmbeddingModel:
    """Build a backbone by name (one of ``BACKBONES``)."""
    if name in ("birdnet", "birdnet-v2.4"):
        from edgebird.backbones.birdnet.model import BirdNET

        return BirdNET(**kwargs)
    if name == "birdnet-fusion":
        from edgebird.backbones.birdnet.fusion import FUSION_LAYERS
        from edgebird.backbones.birdnet.model import BirdNET

        kwargs.setdefault("layers", FUSION_LAYERS)
        return BirdNET(**kwargs)
    if name == "handcrafted":
        from edgebird.backbones.handcrafted import HandcraftedFeatures

        kwargs.pop("batch_size", None)  # no interpreter: nothing to batch
        kwargs.pop("num_threads", None)
        return HandcraftedFeatures(**kwargs)
    raise ValueError(f"unknown backbone {name!r}; available: {', '.join(BACKBONES)}")
