"""The model an analysis runs: BirdNET itself, a custom head on BirdNET, or a standalone file.

Every choice is an ``EmbeddingModel`` (``backbones``), so the engine, the analyzer, the GUI
and a Dask worker run all three the same way:

* **BirdNET V2.4** (no classifier): its own 6,522 classes.
* **Head only** (``X_head.tflite`` from ``edgebird train``, or BirdNET-Analyzer's classifier
  whose input is 1,024 wide): BirdNET runs once per window and the head runs on its embedding
  in the same worker, in the same pass (``HeadModel``).
* **Standalone** (input 144,000 samples: ``edgebird train``'s replace/append models, or
  BirdNET-Analyzer's tflite export): one interpreter from audio to logits (``StandaloneModel``).

A classifier always comes with ``X_Labels.txt`` (one label per output); ``X_Thresholds.csv``
(per-class score thresholds chosen in training) is used when present. Every model outputs
logits; scores are made by ``scores.flat_sigmoid``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebird.audio import SAMPLE_RATE, SEGMENT_SAMPLES
from edgebird.backbones import EmbeddingModel
from edgebird.core.labels import read_labels, read_thresholds
from edgebird.core.quiet import quiet_native_stderr
from edgebird.core.runtime import DEFAULT_BATCH_SIZE, make_interpreter, run_fixed_batch


@dataclass(frozen=True)
class ClassifierFiles:
    """A custom classifier on disk: the model, its labels and (optional) thresholds."""

    model: Path
    labels: list[str]
    thresholds: dict[str, float]
    input_width: int
    n_outputs: int

    @property
    def kind(self) -> str:
        return "standalone" if self.input_width == SEGMENT_SAMPLES else "head"


def _labels_path(model: Path) -> Path:
    return Path(f"{model.with_suffix('')}_Labels.txt")


def classifier_files(path: str | os.PathLike) -> ClassifierFiles:
    """Check a classifier before any work starts; every problem is a ValueError saying what
    to fix (missing labels file, labels that do not match the outputs, not a model)."""
    model = Path(path)
    if model.is_dir():
        found = sorted(model.glob("*.tflite"))
        standalone = [p for p in found if not p.stem.endswith("_head")
                      and "_fold" not in p.stem]
        if len(standalone) != 1:
            raise ValueError(f"{model} is a folder with {len(found)} .tflite files; give the "
                             "model file itself (e.g. CustomClassifier.tflite)")
        model = standalone[0]
    if not model.is_file():
        raise ValueError(f"classifier not found: {model}")
    labels_file = _labels_path(model)
    if not labels_file.is_file():
        raise ValueError(f"the classifier needs its labels file beside it: {labels_file} "
                         "(one label per model output, as 'edgebird train' writes it)")
    labels = read_labels(labels_file)
    try:
        interp = make_interpreter(model_path=str(model))
    except Exception as exc:  # noqa: BLE001 - any loader failure means an unusable file
        raise ValueError(f"{model} could not be loaded as a TFLite model: {exc}") from None
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    width, n_out = int(inp["shape"][-1]), int(out["shape"][-1])
    if len(inp["shape"]) != 2 or width not in (SEGMENT_SAMPLES, 1024):
        raise ValueError(f"{model}: input shape {list(inp['shape'])} is neither BirdNET "
                         f"embeddings [n, 1024] nor 3 s of audio [n, {SEGMENT_SAMPLES}]")
    if len(labels) != n_out:
        raise ValueError(f"{labels_file.name} has {len(labels)} labels but {model.name} has "
                         f"{n_out} outputs: they do not belong together")
    thr_file = Path(f"{model.with_suffix('')}_Thresholds.csv")
    thresholds = read_thresholds(thr_file) if thr_file.is_file() else {}
    return ClassifierFiles(model, labels, thresholds, width, n_out)


def _fixed_batch_interpreter(files: ClassifierFiles, batch: int, threads: int):
    """``(interpreter, input index, output index)`` with the input resized to ``batch`` rows
    once (see ``runtime.run_fixed_batch``)."""
    interp = make_interpreter(model_path=str(files.model), num_threads=threads)
    inp = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(inp, [batch, files.input_width])
    with quiet_native_stderr():
        interp.allocate_tensors()
    return interp, inp, interp.get_output_details()[0]["index"]


def _sha16(path: Path) -> str:
    from edgebird.backbones.birdnet.model import sha256_of

    return sha256_of(path)[:16]


class _Classifier:
    """What both classifier models share: their files, labels, and an interpreter that is
    built lazily in each process (never pickled to a worker)."""

    files: ClassifierFiles
    _interpreter = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_interpreter"] = None
        state["_frontend"] = None
        return state

    @property
    def labels(self) -> list[str]:
        return self.files.labels


class HeadModel(_Classifier):
    """BirdNET's embedding followed by a custom head: one backbone pass per window."""

    embedding_dim = 1024
    sample_rate = SAMPLE_RATE
    segment_samples = SEGMENT_SAMPLES

    def __init__(self, files: ClassifierFiles, backbone: EmbeddingModel):
        self.files = files
        self.backbone = backbone
        self.name = f"{backbone.name}+{files.model.name}"
        self.embedding_dim = backbone.embedding_dim
        self._interpreter = None

    @property
    def fingerprint(self) -> str:
        return f"{self.backbone.fingerprint}+head:{_sha16(self.files.model)}"

    def prepare(self) -> None:
        prepare = getattr(self.backbone, "prepare", None)
        if prepare is not None:
            prepare()

    def load(self):
        load = getattr(self.backbone, "load", None)
        if load is not None:
            load()
        if self._interpreter is None:
            self._batch = int(getattr(self.backbone, "batch_size", DEFAULT_BATCH_SIZE))
            self._interpreter, self._input, self._output = _fixed_batch_interpreter(
                self.files, self._batch, 1)
        return self._interpreter

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        embs, _ = self.backbone.embed(batch)
        interp = self._interpreter or self.load()
        (logits,) = run_fixed_batch(interp, self._input, [self._output], embs, self._batch)
        return embs, logits


class StandaloneModel(_Classifier):
    """A single .tflite from audio to logits; it has no embedding output (dim 0)."""

    embedding_dim = 0
    sample_rate = SAMPLE_RATE
    segment_samples = SEGMENT_SAMPLES

    def __init__(self, files: ClassifierFiles, num_threads: int = 1,
                 batch_size: int = DEFAULT_BATCH_SIZE, split_frontend: bool = True):
        if batch_size < 1 or num_threads < 1:
            raise ValueError("batch size and threads must be >= 1")
        self.files = files
        self.split_frontend = split_frontend
        self._frontend = None
        self.name = files.model.name
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._interpreter = None

    @property
    def fingerprint(self) -> str:
        return f"standalone:{_sha16(self.files.model)}"

    def prepare(self) -> None:
        """Make (and check) the front-end split once, here, before workers load the model."""
        if self.split_frontend:
            from edgebird.backbones.birdnet.model import split_files

            split_files(self.files.model)

    def load(self):
        """BirdNET's front end runs in numpy and the rest of the graph here, as for BirdNET
        itself (``frontend.py``), when the model has that front end and the split checks out;
        otherwise the whole model runs in the interpreter."""
        if self._interpreter is None:
            from edgebird.backbones.birdnet.model import split_files, split_interpreter

            split = split_files(self.files.model) if self.split_frontend else None
            if split is None:
                self._frontend = None
                self._interpreter, self._input, self._output = _fixed_batch_interpreter(
                    self.files, self.batch_size, self.num_threads)
            else:
                interp, self._input, self._frontend = split_interpreter(
                    split, self.batch_size, self.num_threads)
                self._output = interp.get_output_details()[0]["index"]
                self._interpreter = interp
        return self._interpreter

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from edgebird.backbones.birdnet.model import spectrograms

        interp = self._interpreter or self.load()
        if self._frontend is not None:
            batch = spectrograms(self._frontend, np.asarray(batch, dtype=np.float32))
        (logits,) = run_fixed_batch(interp, self._input, [self._output], batch,
                                    self.batch_size)
        return np.empty((len(logits), 0), dtype=np.float32), logits


def load_model(classifier: str | os.PathLike | None = None, num_threads: int = 1,
               batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[EmbeddingModel, dict[str, float]]:
    """The model to analyze with, and its per-class thresholds (empty for BirdNET)."""
    from edgebird.backbones.birdnet.model import BirdNET

    if classifier is None:
        return BirdNET(num_threads=num_threads, batch_size=batch_size), {}
    files = classifier_files(classifier)
    if files.kind == "head":
        backbone = BirdNET(num_threads=num_threads, batch_size=batch_size)
        return HeadModel(files, backbone), files.thresholds
    return StandaloneModel(files, num_threads, batch_size), files.thresholds
