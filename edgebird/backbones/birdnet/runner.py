"""Interpreters for BirdNET-shaped models (BirdNET itself, a standalone classifier with its
front end): the whole graph at a fixed batch, or the split one (numpy front end, then the CNN
in the interpreter; ``frontend.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgebird.core.quiet import quiet_native_stderr
from edgebird.core.runtime import make_interpreter


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
