"""``edgebird analyze``: recordings in, detections out, as BirdNET-Analyzer's tables.

The path of one file: windows → model logits (engine workers) → ``flat_sigmoid`` with the
sensitivity shift → per-window selection (species filter, top-N or per-class thresholds) →
``merge_consecutive`` → one table per result type, each written atomically. Per unit of work
only the detections are kept, never the ``[windows, 6522]`` scores, so memory stays flat in
file length.

The tables' names, headers and renderers come from one table (``core.writers.formats``).

Two drivers share those steps:

* ``analyze_file``: one file in this process, unit by unit (the GUI's single-file tab);
  ``process_file`` adds the skip check and the writing: a pure function of file and settings,
  the one a cluster maps;
* ``analyze_files``: a whole batch with ``--skip-existing`` (``skip_existing``: a file is
  skipped when all its result files exist; they are only ever written whole, so an
  interrupted batch resumes with nothing lost or duplicated), the error log, combined tables
  rebuilt from the per-file tables on disk, and a run summary. Its files' outcomes come from
  the local worker pool or a Dask cluster (``batch.FileBatch.outcomes``) and are booked by
  one ``_Ledger`` either way.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from edgebird import __version__
from edgebird.audio import (
    AudioError,
    AudioInfo,
    AudioSettings,
    find_audio_files,
    notes_for,
    output_stems,
    probe,
)
from edgebird.backbones import EmbeddingModel
from edgebird.core.files import atomic_write_bytes, sweep_temp_files
from edgebird.core.runtime import DEFAULT_BATCH_SIZE
from edgebird.core.scores import (
    DEFAULT_MIN_CONF,
    SENSITIVITY_RANGE,
    Detection,
    flat_sigmoid,
    merge_consecutive,
    select,
)
from edgebird.core.writers import combined, csv_table
from edgebird.core.writers.formats import CHOICES, FORMATS, TableContext, get_format
from edgebird.options import opt
from edgebird.pipeline import engine as eng
from edgebird.pipeline.batch import (
    FileBatch,
    FileJob,
    FileOutcome,
    Ledger,
    Notify,
    RunSummary,
    guarded,
)
from edgebird.pipeline.errorlog import (
    ErrorLog,
    check_output_folder,
    failure_lines,
    output_errors,
)
from edgebird.species import Location

PARAMS_FILE = "BirdNET_analysis_params.csv"
SUMMARY_FILE = "analysis_summary.txt"
#: Which settings made each file's tables (``read_record``): what makes a table "done".
RECORD_FILE = "analysis_record.jsonl"
#: Write errors that concern the whole output folder, not one file: they stop the batch.
OUTPUT_WIDE = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def parse_rtypes(values: Sequence[str]) -> tuple[str, ...]:
    """``["raven,csv", "r"]`` → ``("table", "csv", "r")`` (order kept, duplicates dropped)."""
    out: list[str] = []
    for v in values:
        for name in str(v).split(","):
            if not name.strip():
                continue
            name = get_format(name).name
            if name not in out:
                out.append(name)
    if not out:
        raise ValueError("give at least one result type")
    return tuple(out)


@dataclass(frozen=True)
class AnalyzeSettings:
    """What to detect and what to write. Defaults are BirdNET-Analyzer 2.4's.

    ``min_conf=None`` means: the classifier's per-class thresholds where it ships them
    (``X_Thresholds.csv``), else ``DEFAULT_MIN_CONF``. A number applies to every class.
    ``species_list`` and ``location`` are alternatives (BNA silently ignores the list when
    both are set; here it is an error).
    """

    min_conf: float | None = field(default=None, metadata=opt(
        "--min-conf", help="minimum confidence 0..1 for every class (default: the "
        f"classifier's per-class thresholds if it has them, else {DEFAULT_MIN_CONF:g})"))
    sensitivity: float = field(default=1.0, metadata=opt(
        "--sensitivity", help=f"{SENSITIVITY_RANGE[0]:g}..{SENSITIVITY_RANGE[1]:g}. "
        "BirdNET-Analyzer 2.x's logit shift: score = sigmoid(logit + (S-1)*10), so 1.25 adds "
        "2.5 to every logit. birdnetlib and BirdNET-Pi use the older slope form "
        "sigmoid((2-S)*logit): the same number means something else there"))
    top_n: int | None = field(default=None, metadata=opt(
        "--top-n", help="keep the N best classes of every window whatever their score "
                        "(overrides --min-conf)"))
    merge_consecutive: int = field(default=1, metadata=opt(
        "--merge-consecutive", metavar="N", help="join up to N touching detections of a "
        "species into one (score: mean of its top 3); 1: no merging"))
    rtypes: tuple[str, ...] = field(default=("table",), metadata=opt(
        "--rtype", metavar="TYPE", help=f"one or more of {CHOICES}; space or comma "
                                        "separated"))
    combine: bool = field(default=False, metadata=opt(
        "--combine", "--combine-results", help="also write combined tables over all files "
        "(Raven with a .list.txt, CSV, Kaleidoscope, R)"))
    skip_existing: bool = field(default=True, metadata=opt(
        "--skip-existing", help="skip files whose result files all exist "
                                "(--no-skip-existing redoes them)"))
    additional_columns: tuple[str, ...] = field(default=(), metadata=opt(
        "--additional-columns", metavar="COL", choices=csv_table.ADDITIONAL,
        help="extra CSV columns, as BirdNET-Analyzer's"))
    classifier: str | None = field(default=None, metadata=opt(
        "-c", "--classifier", metavar="MODEL", help="custom classifier .tflite (head-only or "
        "standalone, from 'edgebird train' or BirdNET-Analyzer) with its _Labels.txt beside "
        "it; its _Thresholds.csv is used unless --min-conf is given"))
    species_list: str | None = field(default=None, metadata=opt(
        "--species-list", "--slist", metavar="FILE", help="only these labels (one per line; a "
        "folder means its species_list.txt); labels the model lacks are reported"))
    location: Location | None = None
    species_codes: str | None = field(default=None, metadata=opt(  # Raven's Species Code
        "--species-codes", metavar="FILE", help="label -> code table for the Raven 'Species "
        "Code' column (default: the label). BirdNET-Analyzer's eBird_taxonomy_codes_2024E.json "
        "works as is and makes the tables identical to BNA's"))
    locale: str | None = field(default=None, metadata=opt(
        "--locale", metavar="LANG", help="common names in the tables in this language (zh, de, "
        "pt_BR, ...: BirdNET's translations, from an installed birdnet-analyzer; 'pip install "
        "--no-deps birdnet-analyzer'). Default: English. evaluate and --species-list match "
        "English labels, so keep such tables for reading"))

    def __post_init__(self) -> None:
        if self.min_conf is not None and not 0.0 <= self.min_conf <= 1.0:
            raise ValueError(f"minimum confidence must be in [0, 1], got {self.min_conf:g}")
        flat_sigmoid(np.zeros(1), self.sensitivity)  # validates the range
        if self.top_n is not None and self.top_n < 1:
            raise ValueError("top-N must be >= 1")
        if self.merge_consecutive < 1:
            raise ValueError("merge consecutive must be >= 1")
        object.__setattr__(self, "rtypes", parse_rtypes(self.rtypes))
        unknown = set(self.additional_columns) - set(csv_table.ADDITIONAL)
        if unknown:
            raise ValueError(f"unknown additional columns {sorted(unknown)}; choose from "
                             f"{', '.join(csv_table.ADDITIONAL)}")
        if self.species_list and self.location:
            raise ValueError("give a species list or a location (--lat/--lon), not both")


@dataclass(frozen=True)
class Plan:
    """Settings resolved against the model: everything a worker needs, picklable."""

    settings: AnalyzeSettings
    audio: AudioSettings
    labels: tuple[str, ...]
    thresholds: np.ndarray  # per label: min_conf or the classifier's threshold
    allowed: frozenset[str] | None
    model_name: str
    species_list_name: str = ""
    codes: Mapping[str, str] | None = None  # Raven's Species Code by label (default: the label)
    fingerprint: str = ""  # of everything that changes a table's bytes (``settings_fingerprint``)
    names: Mapping[str, str] | None = None  # common names by scientific name (``--locale``)

    def detections(self, logits: np.ndarray, starts_s: np.ndarray, duration: float,
                   file: str = "") -> list[Detection]:
        """Per-window detections (before merging) from a unit's logits."""
        if len(starts_s) == 0:
            return []
        scores = flat_sigmoid(logits, self.settings.sensitivity)
        ends = np.minimum(starts_s + self.audio.segment_seconds, duration)
        return select(scores, starts_s, ends, list(self.labels), self.thresholds,
                      self.settings.top_n, self.allowed, file)

    def finish(self, detections: list[Detection]) -> list[Detection]:
        """Merge runs, then order rows as BNA does: by start, then by confidence."""
        merged = merge_consecutive(detections, self.settings.merge_consecutive)
        return sorted(merged, key=lambda d: (d.start, -d.confidence))

    def context(self, audio_path: str, info: AudioInfo) -> TableContext:
        """What the tables of one file print besides its detections."""
        s, loc = self.settings, self.settings.location
        lat, lon, week = (loc.lat, loc.lon, loc.week) if loc else (-1, -1, -1)
        return TableContext(
            audio_path, info.sample_rate, self.audio.fmin, self.audio.fmax, lat, lon, week,
            self.audio.overlap, s.sensitivity,
            DEFAULT_MIN_CONF if s.min_conf is None else s.min_conf,
            self.species_list_name, self.model_name, self.codes, s.additional_columns)


def make_plan(settings: AnalyzeSettings, audio: AudioSettings, model: EmbeddingModel,
              class_thresholds: dict[str, float] | None = None,
              warn: Callable[[str], None] = print) -> Plan:
    """Resolve thresholds and the species filter for ``model``'s labels.

    A species list is checked against the model's labels and every unknown label is reported
    through ``warn``. A location filter comes from BirdNET's meta-model, so it can only speak
    about BirdNET's species: custom classes that are not BirdNET labels are kept (reported once).
    """
    from edgebird.species import birdnet_labels, read_species_codes, read_species_list, species_at

    labels = list(model.labels)
    if settings.min_conf is not None or not class_thresholds:
        base = DEFAULT_MIN_CONF if settings.min_conf is None else settings.min_conf
        thresholds = np.full(len(labels), base)
    else:
        thresholds = np.array([class_thresholds.get(lab, DEFAULT_MIN_CONF) for lab in labels])
        missing = [lab for lab in labels if lab not in class_thresholds]
        if len(missing) < len(labels) and missing and len(missing) <= 20:
            warn(f"no threshold for {', '.join(missing)}: using {DEFAULT_MIN_CONF}")
    allowed, list_name = None, ""
    if settings.species_list:
        good, unknown = read_species_list(settings.species_list, known=labels)
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            warn(f"species list {settings.species_list}: {len(unknown)} label(s) the model does "
                 f"not have, ignored: {shown}")
        if not good:
            raise ValueError(f"species list {settings.species_list} holds none of the model's "
                             f"{len(labels)} labels")
        allowed, list_name = frozenset(good), str(settings.species_list)
    elif settings.location is not None:
        here = {lab for lab, _ in species_at(settings.location)}
        known = set(birdnet_labels())
        outside = [lab for lab in labels if lab not in known]
        if outside:
            warn(f"the location filter knows only BirdNET's species; {len(outside)} custom "
                 f"class(es) are kept unfiltered: {', '.join(outside[:10])}")
        allowed = frozenset(lab for lab in labels if lab in here or lab not in known)
    codes = None
    if settings.species_codes:
        codes = read_species_codes(settings.species_codes)
        if not any(lab in codes for lab in labels):
            warn(f"species codes {settings.species_codes}: none of the model's labels has a "
                 "code; the Species Code column keeps the labels")
    names = None
    if settings.locale:
        from edgebird import species_names

        names = species_names.names_for(settings.locale)
        if not names:
            have = species_names.languages()
            raise ValueError(
                f"no species names in {settings.locale!r}: " + (
                    f"BirdNET's translations here are {', '.join(have)}" if have else
                    f"BirdNET's translations are not installed ({species_names.INSTALL_HINT})"))
    plan = Plan(settings, audio, tuple(labels), thresholds, allowed, model_file_name(model),
                list_name, codes, names=names)
    return replace(plan, fingerprint=settings_fingerprint(plan, model.fingerprint))


def settings_fingerprint(plan: Plan, model_fingerprint: str) -> str:
    """A short hash of what a table's content depends on: the model (by content), the audio
    and detection settings, thresholds, species filter and codes. Not the result types,
    ``--combine``, ``--skip-existing`` or the classifier's path (its content is in the
    model's fingerprint): those do not change what a table says."""
    s = plan.settings
    payload = {
        "model": model_fingerprint, "model_name": plan.model_name, "audio": plan.audio.key(),
        "settings": {k: v for k, v in asdict(s).items()
                     if k not in ("rtypes", "combine", "skip_existing", "classifier")
                     and not (k == "locale" and v is None)},  # older records stay valid
        "labels": list(plan.labels), "thresholds": [float(t) for t in plan.thresholds],
        "allowed": sorted(plan.allowed) if plan.allowed is not None else None,
        "codes": dict(sorted(plan.codes.items())) if plan.codes else None,
        "species_list_name": plan.species_list_name,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_file_name(model: EmbeddingModel) -> str:
    """The model's file name, as BNA writes it into its ``model`` column."""
    return model.model_path.name if model.model_path else model.name


def result_paths(out: Path, rel: str, rtypes: Sequence[str],
                 stems: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Per-file result files mirror the input tree: ``out/<output stem><suffix>``; the stem
    is ``rel`` without its extension unless ``stems`` (``audio.output_stems`` of the
    batch's names) keeps it to tell two inputs apart."""
    stem = stems[rel] if stems and rel in stems else os.path.splitext(rel)[0]
    return {r: out / (stem + FORMATS[r].suffix) for r in rtypes}


def done_state(rel: str, out: Path, plan: Plan, made: Mapping[str, str],
               stems: Mapping[str, str] | None = None) -> str:
    """Whether a file's results are already done: ``done`` (every table exists and the
    record says this model and these settings made them), ``changed`` (they exist, made
    with other settings or another model), ``unrecorded`` (they exist, with no record:
    an older edgebird, BNA, or a kill between the tables and their record) or ``missing``."""
    paths = result_paths(out, rel, plan.settings.rtypes, stems)
    if not all(p.is_file() for p in paths.values()):
        return "missing"
    made_with = made.get(record_key(rel, stems))
    if made_with == plan.fingerprint:
        return "done"
    return "unrecorded" if made_with is None else "changed"


def skip_existing(rel: str, path: str, out: Path, plan: Plan,
                  made: Mapping[str, str] | None = None,
                  stems: Mapping[str, str] | None = None) -> FileOutcome | None:
    """The one skip check: with skip-existing, a file is done when every one of its result
    files exists (they are only ever written whole) and the output folder's record says
    they were made with this model and these settings (``made``: the record, read from
    ``out`` when not given); its outcome then says skipped."""
    if not plan.settings.skip_existing:
        return None
    if made is None:
        made = read_record(out)
    if done_state(rel, out, plan, made, stems) == "done":
        return FileOutcome(rel, path, "skipped", "results exist")
    return None


def record_key(rel: str, stems: Mapping[str, str] | None = None) -> str:
    """A file's name in the record: its output stem (one per input, see ``result_paths``)."""
    return stems[rel] if stems and rel in stems else os.path.splitext(rel)[0]


def read_record(out: Path) -> dict[str, str]:
    """``RECORD_FILE``: output stem -> settings fingerprint of its tables (the last line
    for a stem wins; a torn last line from a kill is ignored)."""
    made: dict[str, str] = {}
    try:
        text = (out / RECORD_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return made
    for line in text.splitlines():
        try:
            row = json.loads(line)
            made[str(row["stem"])] = str(row["settings"])
        except (ValueError, KeyError, TypeError):
            continue
    return made


def append_record(out: Path, stem: str, fingerprint: str) -> None:
    """One line per published file, appended after its tables (a single small write, so
    concurrent writers and a kill leave whole lines)."""
    line = json.dumps({"stem": stem, "settings": fingerprint}, ensure_ascii=False) + "\n"
    fd = os.open(out / RECORD_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def write_results(detections: list[Detection], audio_path: str, info: AudioInfo, plan: Plan,
                  paths: dict[str, Path]) -> None:
    """Every table rendered first, then each written atomically (temp file + rename)."""
    context = plan.context(audio_path, info)
    if plan.names:  # --locale: the common names translated; codes still found by label
        from edgebird.species_names import display_name, scientific_name

        def local(label: str) -> str:
            return f"{scientific_name(label)}_{display_name(label, plan.names)}" \
                if "_" in label else label

        detections = [replace(d, label=local(d.label)) for d in detections]
        # Raven's Species Code keeps the English label (or its code): tables read back by
        # label still find it
        codes = {local(lab): (plan.codes or {}).get(lab, lab) for lab in plan.labels}
        context = replace(context, codes=codes)
    texts = {r: FORMATS[r].render(detections, context) for r in paths}
    for r, text in texts.items():
        atomic_write_bytes(paths[r], text.encode("utf-8"))


def publish(rel: str, audio_path: str, info: AudioInfo, n_windows: int,
            detections: list[Detection], plan: Plan, out: Path,
            notes: Sequence[str] = (), stems: Mapping[str, str] | None = None) -> FileOutcome:
    """A file's tables written, then its line in the record; the outcome says done, or
    failed if they cannot be. A full disk or read-only file system is raised (no later
    file could be written either)."""
    try:
        write_results(detections, audio_path, info, plan,
                      result_paths(out, rel, plan.settings.rtypes, stems))
        append_record(out, record_key(rel, stems), plan.fingerprint)
    except OSError as exc:
        if exc.errno in OUTPUT_WIDE:
            raise
        return FileOutcome(rel, audio_path, "failed",
                           f"cannot write results ({exc.strerror or exc})", warnings=list(notes))
    return FileOutcome(rel, audio_path, "done", windows=n_windows, seconds=info.duration,
                       detections=len(detections), warnings=list(notes))


@dataclass
class FileResult:
    info: AudioInfo
    detections: list[Detection]
    windows: int


def analyze_file(path: str | os.PathLike, plan: Plan, model: EmbeddingModel,
                 batch_size: int = DEFAULT_BATCH_SIZE, chunk_windows: int = 64) -> FileResult:
    """Detections of one file, computed here unit by unit (memory flat in file length).
    Raises AudioError for a file that cannot be used."""
    info = probe(path)
    units, n_windows = eng.plan_units(info, plan.audio, chunk_windows, 1)
    tasks = [eng.Task(0, i, info, starts) for i, starts in enumerate(units)]
    dets: list[Detection] = []
    for r in eng.run_units(tasks, model, plan.audio, batch_size, keep_logits=True):
        dets += plan.detections(r.logits, r.starts / plan.audio.sample_rate, info.duration,
                                str(path))
    return FileResult(info, plan.finish(dets), n_windows)


def analyze_part(path: str, starts: np.ndarray, plan: Plan, model: EmbeddingModel,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> list[Detection]:
    """The per-window detections (before merging) of one time chunk of a file: what a
    cluster worker runs for a chunk of a long file. ``assemble`` merges and writes them, so
    the tables are the local run's byte for byte (any split gives the same windows)."""
    info = probe(path)
    [r] = list(eng.run_units([eng.Task(0, 0, info, starts)], model, plan.audio, batch_size,
                             keep_logits=True))
    return plan.detections(r.logits, r.starts / plan.audio.sample_rate, info.duration, path)


def process_file(path: str | os.PathLike, rel: str, out: str | os.PathLike, plan: Plan,
                 model: EmbeddingModel, batch_size: int = DEFAULT_BATCH_SIZE,
                 stems: Mapping[str, str] | None = None) -> FileOutcome:
    """One file, start to finish: skip it if its results exist (with skip-existing), else
    analyze it and write its tables atomically. A pure function of (file, settings): the
    unit a cluster scheduler maps (``cluster.py``). Never raises for a bad file."""
    path_s, out = str(path), Path(out)

    def work() -> FileOutcome:
        result = analyze_file(path, plan, model, batch_size)
        return publish(rel, path_s, result.info, result.windows, result.detections, plan, out,
                       notes_for(result.info, plan.audio), stems)

    return skip_existing(rel, path_s, out, plan, stems=stems) or guarded(rel, path_s, work)


@dataclass
class AnalyzeSummary(RunSummary):
    analyzed: int = 0
    skipped: int = 0
    warnings: list[tuple[str, str]] = field(default_factory=list)
    detections: Counter = field(default_factory=Counter)
    results: dict[str, dict[str, Path]] = field(default_factory=dict)
    combined: list[Path] = field(default_factory=list)
    model: str = ""

    def text(self) -> str:
        lines = [
            f"model: {self.model}",
            f"files: {self.files} ({self.analyzed} analyzed, {self.skipped} skipped as already "
            f"done, {len(self.failed)} failed)",
            self.audio_line("analyzed") if self.windows else self.nothing_text(),
            f"detections: {sum(self.detections.values())} of {len(self.detections)} species "
            "(all result files of this output folder)",
        ]
        for label, n in sorted(self.detections.items(), key=lambda kv: (-kv[1], kv[0]))[:30]:
            lines.append(f"  {n:6d}  {label}")
        if len(self.detections) > 30:
            lines.append(f"  ... and {len(self.detections) - 30} more species")
        if self.combined:
            lines.append("combined: " + ", ".join(p.name for p in self.combined))
        return "\n".join(lines + failure_lines(self.failed))

    def nothing_text(self) -> str:
        """The audio line of a run that analyzed no window (not a 0x speed)."""
        if self.skipped:
            return (f"nothing to analyze: {self.skipped} file(s) already done "
                    "(--no-skip-existing analyzes them again)")
        return "nothing analyzed"


@dataclass
class _Job(FileJob):
    detections: list = field(default_factory=list)


class _Batch(FileBatch):
    """One ``analyze_files`` call: units become detections at once; a file's tables are
    written when its last unit lands. On a cluster, ``process_file`` per file."""

    desc = "analyzing"
    per_file = staticmethod(process_file)
    per_part = staticmethod(analyze_part)

    def __init__(self, out: Path, plan: Plan, engine: eng.EngineSettings,
                 model: EmbeddingModel, cancel: threading.Event | None = None,
                 stems: Mapping[str, str] | None = None):
        super().__init__(model, plan.audio, engine, cancel)
        self.out, self.plan, self.stems = out, plan, stems

    def per_file_kwargs(self) -> dict:
        # The skip check ran here already (with this run's record): the cluster redoes all.
        plan = replace(self.plan, settings=replace(self.plan.settings, skip_existing=False))
        return {"out": os.path.abspath(self.out), "plan": plan,
                "batch_size": self.engine.batch_size, "stems": self.stems}

    def cluster_parts(self, path: Path, workers: int) -> tuple[AudioInfo, list, int] | None:
        if self.audio.crop_mode == "smart":  # the crop looks at the whole file
            return None
        info = probe(path)
        units, n_windows = eng.plan_units(info, self.audio, self.engine.chunk_windows, workers)
        return (info, units, n_windows) if len(units) > 1 else None

    def per_part_kwargs(self) -> dict:
        return {"plan": self.plan, "batch_size": self.engine.batch_size}

    def assemble(self, path: str, rel: str, info: AudioInfo, n_windows: int,
                 parts: list[list]) -> FileOutcome:
        detections = self.plan.finish([d for p in parts for d in p])
        return publish(rel, path, info, n_windows, detections, self.plan, self.out,
                       notes_for(info, self.audio), self.stems)

    def plan_file(self, path: Path, rel: str, info: AudioInfo) -> tuple[_Job, list]:
        units, n_windows = self.plan_units(info)
        notes = notes_for(info, self.audio)
        return _Job(path, rel, info, set(range(len(units))), n_windows, notes=notes), units

    def on_failed(self, job: _Job) -> None:
        job.detections = []

    def on_part(self, job: _Job, result: eng.PartResult) -> None:
        starts = result.starts / self.audio.sample_rate
        job.detections += self.plan.detections(result.logits, starts, job.info.duration,
                                               str(job.path))

    def finish(self, job: _Job) -> FileOutcome:
        detections, job.detections = self.plan.finish(job.detections), []
        return publish(job.rel, str(job.path), job.info, job.n_windows, detections, self.plan,
                       self.out, stems=self.stems)


class _Ledger(Ledger):
    """Books analyze's outcomes: the summary's counts, and every file whose tables are on
    disk (done or skipped) for the combined tables and the detection counts."""

    def __init__(self, out: Path, rtypes: Sequence[str], log: ErrorLog,
                 summary: AnalyzeSummary, notify: Notify | None = None,
                 stems: Mapping[str, str] | None = None):
        super().__init__(log, notify)
        self.out, self.rtypes, self.summary, self.stems = out, rtypes, summary, stems
        self.done: list[tuple[str, Path, dict[str, Path]]] = []  # (rel, audio, result paths)

    def count(self, o: FileOutcome) -> None:
        if o.status == "skipped":
            self.summary.skipped += 1
            self.notify(o.rel, "skipped", o.reason)
        else:
            self.summary.analyzed += 1
            self.summary.windows += o.windows
            self.summary.audio_seconds += o.seconds
            self.notify(o.rel, "done", f"{o.detections} detections")
        self.done.append((o.rel, Path(o.path),
                          result_paths(self.out, o.rel, self.rtypes, self.stems)))


def _count(done: list[tuple[str, Path, dict[str, Path]]], log: ErrorLog) -> Counter:
    """Detections per label over every result file of the run (read back from disk, so
    skipped files count too)."""
    from edgebird.core.writers.readers import read_results

    counts: Counter = Counter()
    for _, _, paths in done:
        first = next(iter(paths.values()))
        try:
            counts.update(d.label for d in read_results(first)[1])
        except (OSError, ValueError) as exc:
            log.warning(str(first), f"cannot read back for the summary ({exc})")
    return counts


def combine_results(out: Path, done: list[tuple[str, Path, dict[str, Path]]],
                    rtypes: Sequence[str], log: ErrorLog) -> list[Path]:
    """The combined tables, in the input tree's order, from the per-file tables on disk."""
    done = sorted(done, key=lambda d: d[0])
    written: list[Path] = []
    for fmt in FORMATS.values():
        if fmt.name not in rtypes or not fmt.combined_name:
            continue
        tables = []
        for _, audio_path, paths in done:
            if not fmt.timeline:
                tables.append((paths[fmt.name], 0.0))
                continue
            try:
                tables.append((paths[fmt.name], probe(audio_path).duration))
            except (AudioError, OSError) as exc:
                log.warning(str(audio_path), f"left out of the combined table ({exc})")
        for name, text in combined.combine(fmt, tables).items():
            atomic_write_bytes(out / name, text.encode("utf-8"))
            written.append(out / name)
    return written


def params_text(plan: Plan, classifier: str | None) -> str:
    """``BirdNET_analysis_params.csv``: BNA's columns (its spelling), then edgebird's."""
    a, s = plan.audio, plan.settings
    loc = s.location
    cols = [
        ("File splitting duration", 30), ("Segment length", a.segment_seconds),
        ("Sample rate", a.sample_rate), ("Segment overlap", a.overlap),
        ("Minimum Segment length", a.min_segment_seconds), ("Bandpass filter minimum", a.fmin),
        ("Bandpass filter maximum", a.fmax), ("Merge consecutive detections",
                                              s.merge_consecutive),
        ("Audio speed", 1.0), ("Custom classifier path", classifier or ""),
        ("edgebird version", __version__), ("Model", plan.model_name),
        ("Sensitivity", s.sensitivity),
        ("Sensitivity convention", "logit shift: sigmoid(clip(logit + (S-1)*10, -20, 20))"),
        ("Minimum confidence", "per-class thresholds" if s.min_conf is None and
         len(set(plan.thresholds.tolist())) > 1 else float(plan.thresholds[0])
         if len(plan.thresholds) else ""),
        ("Top N", s.top_n or ""), ("Species list", plan.species_list_name),
        ("Latitude", loc.lat if loc else -1), ("Longitude", loc.lon if loc else -1),
        ("Week", loc.week if loc else -1), ("Location filter threshold",
                                            loc.threshold if loc else ""),
    ]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([k for k, _ in cols])
    w.writerow([v for _, v in cols])
    return buf.getvalue()


def analyze_files(
    inputs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    settings: AnalyzeSettings = AnalyzeSettings(),
    audio: AudioSettings = AudioSettings(),
    engine: eng.EngineSettings = eng.EngineSettings(),
    model: EmbeddingModel | None = None,
    class_thresholds: dict[str, float] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    notify: Notify | None = None,
    cancel: threading.Event | None = None,
    dask: str | None = None,
) -> AnalyzeSummary:
    """Analyze every audio file under ``inputs`` and write result tables into ``out``.

    Per-file problems go to ``summary.failed`` and ``out/error_log.txt`` and the batch goes
    on; ValueError is raised only for settings no file can fix (bad classifier, empty list).
    ``notify(rel, status, detail)`` hears about every file (a GUI's status table); setting
    ``cancel`` stops the batch with ``batch.Cancelled`` (finished files stay complete).
    ``dask`` (a scheduler address or ``local[:N]``) runs ``process_file`` per file on a Dask
    cluster instead of the local worker pool; everything else is the same.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    if audio.crop_mode != "segments":
        raise ValueError("analysis covers whole files: crop mode must be 'segments'")
    engine = replace(engine, keep_logits=True)
    check_output_folder(Path(out))
    if model is None:
        from edgebird.pipeline.models import load_model

        model, class_thresholds = load_model(settings.classifier, engine.threads,
                                             engine.batch_size)
    out = Path(out)
    say = echo or (lambda msg: tqdm.write(msg))
    log = ErrorLog(out / "error_log.txt", say)
    with output_errors(out, log):
        plan = make_plan(settings, audio, model, class_thresholds,
                         warn=lambda m: log.warning("settings", m))
        files, problems = find_audio_files(list(inputs))
        for path, reason in problems:
            log.error(path, reason)
        summary = AnalyzeSummary(files=len(files) + len(problems), model=model.name)
        out.mkdir(parents=True, exist_ok=True)
        stems = output_stems([rel for _, rel in files])
        todo, skipped = redo_or_skip(files, out, plan, stems, log)
        atomic_write_bytes(out / PARAMS_FILE, params_text(plan, settings.classifier).encode())
        ledger = _Ledger(out, settings.rtypes, log, summary, notify, stems)
        for outcome in skipped:
            ledger.book(outcome)
        with _Batch(out, plan, engine, model, cancel, stems) as batch:
            for outcome in batch.outcomes(todo, progress, dask):
                ledger.book(outcome)
        done = ledger.done
        sweep_temp_files(out)
        if settings.combine:
            summary.combined = combine_results(out, done, settings.rtypes, log)
        summary.detections = _count(done, log)
        summary.failed = list(log.errors)
        summary.warnings = list(log.warnings)
        summary.results = {rel: paths for rel, _, paths in done}
        summary.wall_seconds = time.perf_counter() - t0
        atomic_write_bytes(out / SUMMARY_FILE, (summary.text() + "\n").encode("utf-8"))
    return summary


def redo_or_skip(files: list[tuple[Path, str]], out: Path, plan: Plan,
                 stems: Mapping[str, str], log: ErrorLog
                 ) -> tuple[list[tuple[Path, str]], list[FileOutcome]]:
    """Split the files into work and skipped outcomes (``skip_existing`` against the
    folder's record), and say once, on the console and in the log, how many existing
    results are redone because other settings or another model made them (or nothing
    recorded what made them)."""
    made = read_record(out) if plan.settings.skip_existing else {}
    todo, skipped, redo = [], [], Counter()
    for path, rel in files:
        outcome = skip_existing(rel, str(path), out, plan, made, stems)
        if outcome is not None:
            skipped.append(outcome)
            continue
        todo.append((path, rel))
        if plan.settings.skip_existing:
            redo[done_state(rel, out, plan, made, stems)] += 1
    if redo["changed"]:
        log.warning(str(out), f"{redo['changed']} file(s) have results made with another model "
                    "or other settings: analyzing them again (their tables are replaced)")
    if redo["unrecorded"]:
        log.warning(str(out), f"{redo['unrecorded']} file(s) have results with no record of "
                    f"the settings that made them ({RECORD_FILE}): analyzing them again")
    return todo, skipped
