"""What every backbone is to its callers: ``EmbeddingModel`` and its result, ``Embeddings``.

The engine, the store, training, analysis and the cluster only use what is declared here, so
a new backbone (a network, a baseline, a classifier on top of one) subclasses
``EmbeddingModel``, fills in the three abstract members, and overrides the defaults it needs;
no caller probes for optional attributes.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgebird.audio import SAMPLE_RATE, SEGMENT_SAMPLES
from edgebird.core.runtime import DEFAULT_BATCH_SIZE


class Embeddings(NamedTuple):
    """What ``embed`` returns: a tuple, so ``embs, logits = model.embed(x)`` unpacks it."""

    #: ``[n, embedding_dim]`` float32 (``[n, 0]`` for a model without embeddings)
    embeddings: np.ndarray
    #: ``[n, len(labels)]`` float32 (``[n, 0]`` for a model without classes)
    logits: np.ndarray


class EmbeddingModel(abc.ABC):
    """A model that turns fixed-length mono windows into embeddings (and, if it has classes,
    logits).

    ``embed`` takes float32 ``[n, segment_samples]`` for any n. Implementations must be
    picklable before first use (the engine ships them to worker processes, the cluster to
    other machines) and load their weights lazily, once per process (``load``).
    """

    #: Names the model in logs and in the store's metadata.
    name: str = ""
    sample_rate: int = SAMPLE_RATE
    segment_samples: int = SEGMENT_SAMPLES
    #: Values per window in ``Embeddings.embeddings``.
    embedding_dim: int = 0
    #: False for a model that only gives logits (a standalone classifier): its embeddings
    #: are ``[n, 0]`` and it cannot feed the store or training.
    has_embeddings: bool = True
    #: Rows the model's interpreter takes at once; a shorter batch is padded.
    batch_size: int = DEFAULT_BATCH_SIZE
    #: Interpreter threads per process.
    num_threads: int = 1
    #: The weights file, if there is one (BirdNET-Analyzer writes its name into tables).
    model_path: Path | None = None

    @property
    @abc.abstractmethod
    def labels(self) -> list[str]:
        """One class name per logit (empty for a model without classes)."""

    @property
    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Identifies the weights: part of every cache key, so models never mix."""

    @abc.abstractmethod
    def embed(self, batch: np.ndarray) -> Embeddings:
        """Embeddings and logits of float32 windows ``[n, segment_samples]``."""

    def prepare(self) -> None:  # noqa: B027 - a default, not a missing method
        """Make derived files (rewritten models) once, in the parent, before the model is
        pickled to workers; nothing by default."""

    def load(self) -> object:
        """Load the weights now (each worker calls this at start-up, while the parent is
        still planning); ``embed`` loads them too if this was not called. Nothing by
        default."""
        return None

    def check_windows(self, batch: np.ndarray) -> None:
        """A ValueError unless ``batch`` is ``[n, segment_samples]``."""
        if batch.ndim != 2 or batch.shape[1] != self.segment_samples:
            raise ValueError(f"expected [n, {self.segment_samples}] samples, got {batch.shape}")
