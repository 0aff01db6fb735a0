"""Test doubles shared by several test modules (imported as ``fakes``; tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from edgebird.backbones import EmbeddingModel, Embeddings

SR = 48000


class FakeModel(EmbeddingModel):
    """Logits known from the samples: label A's logit is ``40 * mean - 2`` (a window of
    level 0.1 scores sigmoid(2) = 0.88, a silent one sigmoid(-2) = 0.12), B's is 0 (0.5),
    C's is -10."""

    name = "fake"
    sample_rate = SR
    segment_samples = 3 * SR
    embedding_dim = 2
    labels = ["Alpha a_A", "Beta b_B", "Gamma c_C"]
    fingerprint = "fake:1"

    def embed(self, batch):
        m = np.asarray(batch, dtype=np.float64).mean(axis=1)
        logits = np.stack([40 * m - 2, 0 * m, 0 * m - 10], axis=1).astype(np.float32)
        return Embeddings(np.stack([m, m], axis=1).astype(np.float32), logits)


def levels_file(path: Path, levels: list[float]) -> Path:
    """3 s per level, constant (DC) samples: the fake model reads the level back."""
    x = np.concatenate([np.full(3 * SR, v, dtype=np.float32) for v in levels])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, SR, subtype="FLOAT")
    return path
