"""Early fusion: intermediate BirdNET layers as features, pooled per window.

``BirdNET(layers=...)`` makes each named tensor an output too (``files.embedding_model_file``)
and pools its activation per window (mean and max over the time-frequency cells), so a head
can use low- and mid-level features as well as the embedding. Here: which layers
(``FUSION_LAYERS``), how they are checked against the model file and pooled, and the list of
usable layers (``edgebird embed --list-layers``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgebird.backbones.birdnet import graph as tflite_graph
from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR, birdnet_files
from edgebird.core.quiet import quiet_native_stderr
from edgebird.core.runtime import make_interpreter

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
