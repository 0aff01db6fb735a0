"""Species lists: from BirdNET's location/week meta-model, or from files, always validated.

The meta-model (``backbones/birdnet/meta.py``) gives an occurrence score in [0, 1] for each of
BirdNET's 6,522 labels at a place and week (week 1-48, four per month, or -1 for the whole
year); BirdNET-Analyzer keeps labels scoring at least ``sf_thresh`` (``DEFAULT_SF_THRESH``).
No TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.backbones.birdnet.meta import birdnet_labels, check_place, occurrence
from edgebird.core.labels import read_species_list as parse_species_list
from edgebird.core.labels import write_labels
from edgebird.options import opt

#: BirdNET-Analyzer's ``--sf_thresh``.
DEFAULT_SF_THRESH = 0.03
#: ``species_at``'s orders: by occurrence score, or by name.
SORTS = ("freq", "alpha")

__all__ = ["Location", "birdnet_labels", "occurrence", "read_species_codes",
           "read_species_list", "species_at", "write_species_list"]


@dataclass(frozen=True)
class Location:
    """Where and when: BNA's ``--lat --lon --week --sf_thresh``."""

    lat: float = field(metadata=opt("--lat", help="latitude, -90..90"))
    lon: float = field(metadata=opt("--lon", help="longitude, -180..180"))
    week: int = field(default=-1, metadata=opt(
        "--week", help="week 1-48 (four per month), or -1 for the whole year"))
    threshold: float = field(default=DEFAULT_SF_THRESH, metadata=opt(
        "--sf-thresh", help="minimum occurrence score in BirdNET's location/week "
                            "meta-model (BirdNET-Analyzer's --sf_thresh)"))

    def __post_init__(self) -> None:
        check_place(self.lat, self.lon, self.week)
        if not 0.0001 <= self.threshold <= 0.99:
            raise ValueError(f"threshold must be in [0.0001, 0.99], got {self.threshold:g}")


def species_at(location: Location, sort: str = "freq") -> list[tuple[str, float]]:
    """Labels likely at ``location`` with their scores, by score (``freq``) or name."""
    if sort not in SORTS:
        raise ValueError("sort must be 'freq' or 'alpha'")
    scores = occurrence(location.lat, location.lon, location.week)
    labels = birdnet_labels()
    keep = [(labels[i], float(scores[i])) for i in np.flatnonzero(scores >= location.threshold)]
    if sort == "alpha":
        return sorted(keep)
    return sorted(keep, key=lambda kv: (-kv[1], kv[0]))


def write_species_list(path: str | os.PathLike, labels: list[str]) -> Path:
    """One label per line; a folder gets ``species_list.txt`` inside (BNA's convention)."""
    path = Path(path)
    if path.is_dir() or str(path).endswith(os.sep):
        path = path / "species_list.txt"
    return write_labels(path, labels)


def read_species_list(path: str | os.PathLike,
                      known: list[str] | None = None) -> tuple[list[str], list[str]]:
    """``(labels, unknown)`` from a list file: one ``Scientific_Common`` label per line;
    blank lines and lines starting with ``#`` are ignored. Labels that are not in ``known``
    (default: BirdNET's) are returned in ``unknown`` for the caller to report, never
    silently dropped or kept."""
    path = Path(path)
    if path.is_dir():
        path = path / "species_list.txt"
    if not path.is_file():
        raise ValueError(f"species list not found: {path}")
    labels = parse_species_list(path)
    known_set = set(known if known is not None else birdnet_labels())
    good = [lab for lab in labels if lab in known_set]
    unknown = [lab for lab in labels if lab not in known_set]
    return good, unknown


def read_species_codes(path: str | os.PathLike) -> dict[str, str]:
    """Species codes for the Raven table's ``Species Code`` column, by label.

    edgebird ships no code table (eBird's codes are not in BirdNET's files), so without one
    the column repeats the label. BirdNET-Analyzer writes eBird codes from its own
    ``eBird_taxonomy_codes_2024E.json``; pointing here at that file (or any JSON object
    ``{"Scientific_Common": "code"}``, or a text file of ``label<TAB or comma>code`` lines)
    makes the tables identical to BNA's.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"species codes file not found: {path}")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"species codes {path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise ValueError(f"species codes {path}: expected a JSON object of label: code")
        codes = dict(data)
    else:
        codes = {}
        for n, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t") if "\t" in line else line.rsplit(",", 1)
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise ValueError(f"species codes {path}, line {n}: expected 'label<TAB>code' "
                                 f"or 'label,code', got {line!r}")
            codes[parts[0].strip()] = parts[1].strip()
    if not codes:
        raise ValueError(f"species codes {path} holds no codes")
    return codes
