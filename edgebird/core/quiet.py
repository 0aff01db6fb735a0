"""Silence chatter that native libraries print straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native stderr (LiteRT's "Created TensorFlow Lite XNNPACK delegate" banner,
    mpg123's resync notes on broken MP3s), which would otherwise break progress bars.
    Python exceptions still propagate; only fd 2 is redirected, briefly."""
    try:
        saved = os.dup(2)
    except OSError:  # no usable stderr (e.g. a daemon): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
