"""Ground truth: annotation tables and "known to lack" lists, and how recordings are found.

**Which recording a table row belongs to.** Recordings are named by their path without the
extension. A detection's recording (the path in its row, or for a table without paths the
table's own name before ``.BirdNET.``) is the annotated recording with the same file stem
(compared ignoring case); when several annotated recordings share that stem, the one whose
folders agree with the detection's path over the most trailing folder names, and when that
still ties, none (reported as ambiguous). So absolute paths in Raven tables, relative names in
annotation CSVs and names of per-file tables all find their recording.

**What counts for false positives.** An annotated recording is taken as fully annotated for
every annotated class: a detection of such a class there that matches no annotation is a false
positive. A recording listed in an ``--absent`` table (``file,label``) as lacking a class counts
for that class too (whether or not it is annotated). Detections of any other class, or in
recordings that are neither annotated nor listed, are not evaluated (and counted as such).
Annotations labelled like a non-event folder (noise, background, ...) mark a recording as
annotated without adding a class.
"""

from __future__ import annotations

import csv
import functools
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from edgebird.training.dataset import (
    NON_EVENT_NAMES,
    DatasetError,
    normalise_label,
    read_annotation_rows,
)


@functools.cache
def _key(path: str) -> str:
    """A recording's name: its path without extension, with forward slashes."""
    p = PurePath(str(path).replace("\\", "/"))
    return p.with_suffix("").as_posix() if p.suffix else p.as_posix()


AMBIGUOUS = "\0ambiguous"


class RecordingIndex:
    """Finds the known recording a path names (the rule in the module docstring)."""

    def __init__(self, keys: list[str]):
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        for k in keys:
            self._by_stem[PurePath(k).name.casefold()].append(k)
        self._cache: dict[str, str | None] = {}

    def find(self, path: str | os.PathLike) -> str | None:
        """The recording's key, ``None`` if unknown, ``AMBIGUOUS`` if several fit equally."""
        text = str(path)
        if text in self._cache:
            return self._cache[text]
        key = _key(text)
        cands = self._by_stem.get(PurePath(key).name.casefold(), [])
        found: str | None = None
        if len(cands) == 1:
            found = cands[0]
        elif cands:
            parts = [p.casefold() for p in PurePath(key).parts[::-1]]

            def agree(k: str) -> int:
                n = 0
                theirs = (p.casefold() for p in PurePath(k).parts[::-1])
                for a, b in zip(parts, theirs, strict=False):
                    if a != b:
                        break
                    n += 1
                return n

            scores = sorted(((agree(k), k) for k in cands), reverse=True)
            found = scores[0][1] if scores[0][0] > scores[1][0] else AMBIGUOUS
        self._cache[text] = found
        return found


@dataclass
class Truth:
    """Annotations by recording and class, the classes, and which recordings lack what."""

    classes: list[str] = field(default_factory=list)  # annotated classes, as first written
    annotations: dict[str, dict[str, list[tuple[float, float]]]] = field(
        default_factory=dict)  # key -> class -> intervals
    annotated: set[str] = field(default_factory=set)  # keys fully annotated
    absent: dict[str, set[str]] = field(default_factory=dict)  # key -> classes it lacks
    paths: dict[str, Path] = field(default_factory=dict)  # key -> path as given

    @property
    def all_classes(self) -> list[str]:
        """Annotated classes, then classes only listed as absent somewhere."""
        extra = sorted({c for cs in self.absent.values() for c in cs} - set(self.classes))
        return sorted(self.classes) + extra

    def evaluated_for(self, cls: str) -> set[str]:
        """The recordings in which detections of ``cls`` are judged."""
        keys = {k for k, cs in self.absent.items() if cls in cs}
        return keys | self.annotated if cls in self.classes else keys

    def extent(self, key: str) -> float:
        """The end of the last annotation of a recording (0 without annotations)."""
        return max((e for ivs in self.annotations.get(key, {}).values() for _, e in ivs),
                   default=0.0)

    def index(self) -> RecordingIndex:
        return RecordingIndex(sorted(self.paths))


class LabelMap:
    """Which class a detection label is: the same label, or for ``Scientific_Common`` labels
    either half (annotations often name one of them), compared ignoring case, spacing and
    underscores for spaces (``Passer_domesticus`` names ``Passer domesticus_House Sparrow``).
    Two ``Scientific_Common`` labels with one scientific name are one class whatever their
    common names (an annotation's "Setophaga coronata_Myrtle Warbler" is BirdNET's "Setophaga
    coronata_Yellow-rumped Warbler"): the scientific name is the identity, common names vary
    by list and by subspecies group. Full labels always win over halves."""

    def __init__(self, classes: list[str]):
        self._norm: dict[str, str] = {}
        for c in classes:
            self._norm.setdefault(normalise_label(c), c)
            self._norm.setdefault(_loose(c), c)
        for c in classes:  # after every full label, so a half never hides one
            if "_" in c:
                self._norm.setdefault(normalise_label(c.split("_", 1)[0]), c)
        self._cache: dict[str, str | None] = {}

    def _find(self, text: str) -> str | None:
        return self._norm.get(normalise_label(text)) or self._norm.get(_loose(text))

    def __call__(self, label: str) -> str | None:
        if label not in self._cache:
            found = self._find(label)
            if found is None and "_" in label:
                sci, common = label.split("_", 1)
                found = self._find(sci) or self._find(common)
            self._cache[label] = found
        return self._cache[label]


def _loose(label: str) -> str:
    return normalise_label(label.replace("_", " "))


def read_truth(tables: list[str | os.PathLike], absent: list[str | os.PathLike] = (),
               audio_root: str | os.PathLike | None = None) -> Truth:
    """Read annotation tables (``read_annotation_rows``: CSV or Raven) and absent lists.
    Raises ``DatasetError`` naming the file and line of anything unusable."""
    truth = Truth()
    names: dict[str, str] = {}
    for table in tables:
        rows, bad = read_annotation_rows(table, audio_root, probe_lengths=False)
        if bad:  # a wrong row would silently move every figure: refuse, say which
            raise DatasetError(f"{len(bad)} unusable annotation rows:\n  " + "\n  ".join(bad))
        for row in rows:
            key = _key(str(row.path))
            truth.paths.setdefault(key, row.path)
            truth.annotated.add(key)
            norm = normalise_label(row.label)
            if norm in NON_EVENT_NAMES:
                continue
            cls = names.setdefault(norm, row.label)
            truth.annotations.setdefault(key, {}).setdefault(cls, []).append((row.begin, row.end))
    truth.classes = list(names.values())
    labels = LabelMap(truth.classes)
    for table in absent:
        for path, label in _absent_rows(Path(table), audio_root):
            key = _key(str(path))
            truth.paths.setdefault(key, path)
            truth.absent.setdefault(key, set()).add(labels(label) or label)
    return truth


def _absent_rows(table: Path, audio_root: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """``file,label`` rows: the recording ``file`` is known to lack the class ``label``."""
    if not table.is_file():
        raise DatasetError(f"absent list not found: {table}")
    root = Path(audio_root) if audio_root else table.parent
    with open(table, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= {(c or "").strip().lower() for c in rows[0]}:
        raise DatasetError(f"{table}: an absent list needs the columns file,label and a row")
    cols = {(c or "").strip().lower(): c for c in rows[0]}
    out = []
    for i, row in enumerate(rows, start=2):
        name, label = (row[cols["file"]] or "").strip(), (row[cols["label"]] or "").strip()
        if not name or not label:
            raise DatasetError(f"{table} line {i}: empty file or label")
        path = Path(name)
        out.append((path if path.is_absolute() else root / path, label))
    return out
