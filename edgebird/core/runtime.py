"""The one place that creates TFLite interpreters.

ai-edge-litert is the maintained LiteRT interpreter; ``tflite-runtime`` (its predecessor)
is a fallback for old Raspberry Pi images only: its last release fails to import with
numpy 2. TensorFlow is never imported here.
"""

from __future__ import annotations

from typing import Any

#: Windows per interpreter call. With one thread per process, speed barely depends on it
#: (batch 1 to 8 within 2 %, docs/BENCHMARKS.md) while each extra window costs about 20 MB
#: per worker; 3 keeps a 2-worker analysis under 600 MB in all.
DEFAULT_BATCH_SIZE = 3


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter as module
    except ImportError:  # pragma: no cover - exercised on old Pis only
        try:
            from tflite_runtime import interpreter as module  # type: ignore[no-redef]
        except ImportError:
            raise ImportError(
                "no TFLite interpreter found: pip install ai-edge-litert "
                "(or tflite-runtime on 32-bit / Python 3.9 Raspberry Pi OS)"
            ) from None
    return module


def make_interpreter(
    model_path: str | None = None,
    model_content: bytes | None = None,
    num_threads: int = 1,
    xnnpack: bool = True,
    preserve_all_tensors: bool = False,
) -> Any:
    """An interpreter with XNNPACK on (default) or the plain built-in kernels.

    ``preserve_all_tensors`` (with XNNPACK off) keeps every intermediate tensor readable by
    index after ``invoke``; otherwise the memory planner reuses their memory for later tensors
    and reading one gives another tensor's values without any error. For checks only: it
    costs memory."""
    module = _interpreter_module()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = (
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    if model_content is not None:
        return module.Interpreter(model_content=model_content, **kwargs)
    return module.Interpreter(model_path=model_path, **kwargs)



def run_fixed_batch(interp: Any, input_index: int, output_indices: list[int], x: Any,
                    batch_size: int) -> list[Any]:
    """Run ``x`` (``[n, ...]``, any n) through an interpreter whose input was resized to
    ``batch_size`` once: full batches as they are, the last one zero-padded. Resizing per call
    would re-plan the graph, which costs more than the padded rows."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    outs: list[Any] = []
    for i in range(0, max(n, 1), batch_size):
        chunk = x[i:i + batch_size]
        k = len(chunk)
        if k < batch_size:
            padded = np.zeros((batch_size, *x.shape[1:]), dtype=np.float32)
            padded[:k] = chunk
            chunk = padded
        interp.set_tensor(input_index, np.ascontiguousarray(chunk))
        interp.invoke()
        got = [interp.get_tensor(o)[:k] for o in output_indices]
        if not outs:
            outs = [np.empty((n, *g.shape[1:]), dtype=np.float32) for g in got]
        for buf, g in zip(outs, got):  # noqa: B905 - Python 3.9 on the Pi has no strict=
            buf[i:i + k] = g
    return outs
