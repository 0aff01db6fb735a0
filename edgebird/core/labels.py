"""The one parser of the small text files beside a model: labels, thresholds, species lists.

``analyze``, the GUI, ``inspect``, ``deploy`` and the field recorder read these files with the
functions here, so a file one of them accepts the others accept too (and a threshold outside
[0, 1] is refused by all of them). Problems are ``ValueError``s that name the file and say what
is wrong; callers wrap them in their own error type. Standard library only (the kit ships it).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from edgebird.core.files import atomic_write_bytes


def read_labels(path: str | os.PathLike) -> list[str]:
    """``X_Labels.txt``: one label per model output; a BOM, surrounding spaces and blank
    lines are dropped (as BirdNET-Analyzer's own files may carry them)."""
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]


def read_thresholds(path: str | os.PathLike) -> dict[str, float]:
    """``Class,Threshold`` rows (``edgebird train``'s ``X_Thresholds.csv``), each in [0, 1];
    a value that is not a number is named with its line."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"Class", "Threshold"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: not a thresholds file (expected columns Class,Threshold;"
                             f" found {', '.join(reader.fieldnames or ()) or 'nothing'})")
        out = {}
        for line, row in enumerate(reader, start=2):
            raw = row["Threshold"]
            try:
                out[row["Class"]] = float(raw)
            except (TypeError, ValueError):
                what = "no threshold" if raw is None else f"threshold {raw!r} is not a number"
                raise ValueError(f"{path} line {line}: not a thresholds file ({what} for "
                                 f"class {row['Class']!r})") from None
    bad = [c for c, t in out.items() if not 0.0 <= t <= 1.0]
    if bad:
        raise ValueError(f"{path}: thresholds must be in [0, 1] (classes {', '.join(bad[:5])})")
    return out


def read_species_list(path: str | os.PathLike) -> list[str]:
    """A species list: one ``Scientific_Common`` label per line; blank lines and lines
    starting with ``#`` are ignored. Whether the labels are known is the caller's check."""
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8-sig").splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def write_labels(path: str | os.PathLike, labels: list[str], comment: str = "") -> Path:
    """One label per line (a labels file or a species list), written atomically; ``comment``
    becomes a ``#`` line first (a species list's provenance)."""
    head = f"# {comment}\n" if comment else ""
    atomic_write_bytes(Path(path), (head + "\n".join(labels) + "\n").encode("utf-8"))
    return Path(path)
