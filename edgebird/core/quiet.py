"""Silence chatter that native libraries print straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def _fd2_to(fd: int) -> Iterator[bool]:
    """Point file descriptor 2 at ``fd`` for the block; yields False (and redirects
    nothing) when there is no usable stderr (e.g. a daemon)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield False
        return
    try:
        os.dup2(fd, 2)
        yield True
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence native stderr (LiteRT's "Created TensorFlow Lite XNNPACK delegate" banner,
    mpg123's resync notes on broken MP3s), which would otherwise break progress bars.
    Python exceptions still propagate; only fd 2 is redirected, briefly."""
    with open(os.devnull, "w") as devnull, _fd2_to(devnull.fileno()):
        yield


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[list[str]]:
    """Like ``quiet_native_stderr``, but keep what was printed: the yielded list holds its
    non-empty lines once the block ends (mpg123's warnings, to report with a file name)."""
    lines: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        try:
            with _fd2_to(tmp.fileno()):
                yield lines
        finally:
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
            lines.extend(ln.strip() for ln in text.splitlines() if ln.strip())
