"""Result writers, one small module per format, byte-compatible with BirdNET-Analyzer 2.4.

Writers take ``scores.Detection`` rows and plain values, never model objects, and return the
file's text (``render``); ``write`` puts it on disk atomically. Times are written the way BNA
writes them (``str(round(t, 2))``: ``0.0``, ``4.5``, ``5.43``), so tables that tools built
for BNA parse today parse unchanged.

This is the first part of the analysis step (issue 5): per-file tables. Combined tables, the
readers used by ``segments`` and the R format follow with the ``analyze`` command.
"""

from __future__ import annotations

from pathlib import Path

from edgebird.core.files import atomic_write_bytes


def bna_time(t: float) -> str:
    """A time as BNA prints it: rounded to 2 decimals, Python's shortest float repr."""
    return str(round(float(t), 2))


def split_label(label: str) -> tuple[str, str]:
    """``Scientific_Common`` → (scientific, common); a label without ``_`` is both."""
    parts = label.split("_", 1)
    return parts[0], parts[-1]


def write(path: str | Path, text: str) -> Path:
    path = Path(path)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
