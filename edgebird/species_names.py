"""Species' common names in another language, from BirdNET's own label translations.

BirdNET ships translated label files (``BirdNET_GLOBAL_6K_V2.4_Labels_zh.txt`` and 36 more, same
order and scientific names as the English file, common names translated) inside the
BirdNET-Analyzer wheel. edgebird does not copy or download them: when ``birdnet_analyzer`` is
installed (``pip install --no-deps birdnet-analyzer`` adds its 3.4 MB of data files without its
TensorFlow dependencies) they are found with ``importlib.util.find_spec``, which locates the
package without importing it. Anything not found keeps its English name. Standard library only.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from edgebird.core.labels import read_labels

#: Where the translations are found when ``birdnet_analyzer`` is installed.
PACKAGE, SUBDIR = "birdnet_analyzer", Path("labels") / "V2.4"
PATTERN = "BirdNET_GLOBAL_6K_V2.4_Labels_{}.txt"
#: How a user gets them (shown by the GUI when they are missing).
INSTALL_HINT = "pip install --no-deps birdnet-analyzer"
ENGLISH = "en"

__all__ = ["ENGLISH", "INSTALL_HINT", "common_name", "display_name", "languages",
           "names_for", "translations_dir"]


def translations_dir() -> Path | None:
    """The folder holding BirdNET's translated label files, or None when not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        folder = Path(base) / SUBDIR
        if folder.is_dir():
            return folder
    return None


def languages(folder: str | os.PathLike | None = None) -> list[str]:
    """Language codes with a translation (``zh``, ``de``, ``pt_BR``...), sorted; [] if none."""
    folder = Path(folder) if folder is not None else translations_dir()
    if folder is None or not folder.is_dir():
        return []
    prefix, suffix = PATTERN.split("{}")
    return sorted(p.name[len(prefix):-len(suffix)] for p in folder.glob(PATTERN.format("*")))


def common_name(label: str) -> str:
    """``Scientific_Common`` -> ``Common`` (a label without ``_`` is its own name)."""
    return label.split("_", 1)[1] if "_" in label else label


def scientific_name(label: str) -> str:
    return label.split("_", 1)[0]


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime: float) -> dict[str, str]:
    out = {}
    for lab in read_labels(path):
        if "_" in lab:
            sci, name = lab.split("_", 1)
            out.setdefault(sci.strip(), name.strip())
    return out


def names_for(lang: str, folder: str | os.PathLike | None = None) -> dict[str, str]:
    """Scientific name -> common name in ``lang``; {} for English, an unknown language, or
    when the translations are not installed (callers then keep English)."""
    if not lang or lang == ENGLISH:
        return {}
    folder = Path(folder) if folder is not None else translations_dir()
    if folder is None:
        return {}
    path = folder / PATTERN.format(lang)
    if not path.is_file():
        return {}
    return _read(str(path), path.stat().st_mtime)


def display_name(label: str, names: dict[str, str]) -> str:
    """The common name of ``label`` in the mapping's language, else its English name."""
    return names.get(scientific_name(label), common_name(label))
