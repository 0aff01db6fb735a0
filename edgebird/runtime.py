"""The one place that creates TFLite interpreters.

ai-edge-litert is the maintained LiteRT interpreter; ``tflite-runtime`` (its predecessor)
is a fallback for old Raspberry Pi images only: its last release fails to import with
numpy 2. TensorFlow is never imported here.
"""

from __future__ import annotations

from typing import Any


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
) -> Any:
    """An interpreter with XNNPACK on (default) or the plain built-in kernels."""
    module = _interpreter_module()
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = (
            module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    if model_content is not None:
        return module.Interpreter(model_content=model_content, **kwargs)
    return module.Interpreter(model_path=model_path, **kwargs)

