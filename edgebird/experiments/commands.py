"""``edgebird experiment``: the research comparisons, on the user's own labelled data.

- ``curve``: learning curves (shots per class), any backbones x heads on the same splits;
- ``pseudo``: pseudo-labelling rounds against the same model without them;
- ``report``: the standard set (every head on BirdNET; BirdNET vs multi-layer fusion vs
  hand-crafted features; pseudo-labelling with three loss weightings) into one EXPERIMENTS.md.

Features come through the same store and engine as ``edgebird train`` (a second run is a
cache hit), one ``Features`` per backbone with the rows in the same order, so a split made
once serves every backbone. The protocol is in ``fewshot``; the writing in
``experiment_report``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
from edgebird.backbones import EmbeddingModel, get_backbone
from edgebird.experiments.fewshot import (
    Candidate,
    Noise,
    Split,
    learning_curve,
    make_splits,
    usable_shots,
)
from edgebird.experiments.pseudolabel import Pool, PseudoSettings, run_rounds, split_pool
from edgebird.heads import HEADS, KERAS_HEADS, Head, make_head, params_of
from edgebird.options import opt
from edgebird.pipeline import engine as eng
from edgebird.training.dataset import DatasetError, TrainingSet, check
from edgebird.training.features import (
    UNANNOTATED_CHOICES,
    Features,
    build_features,
    synthetic_negatives,
)

#: Seeds (added to the run's seed) of the synthetic noise sets, as ``edgebird train`` uses.
NOISE_EVAL_SEED, NOISE_POOL_SEED = 1000, 2000


@dataclass(frozen=True)
class CurveSettings:
    """Learning-curve protocol (``fewshot``'s module docstring says why each is so)."""

    shots: tuple[int, ...] = field(default=(1, 2, 4, 8, 16, 25, 50, 100), metadata=opt(
        "--shots", help="training windows per class; counts above what the data gives are "
                        "dropped"))
    repeats: int = field(default=10, metadata=opt(
        "--repeats", help="random splits, each holding out recordings; with open set, each "
                          "leaves out another class"))
    test_fraction: float = field(default=0.3, metadata=opt(
        "--test-fraction", help="share of each class's recordings held out"))
    open_set: bool = field(default=True, metadata=opt(
        "--open-set", help="leave one class out of training per repeat to measure false "
                           "positives on an unseen species"))
    synthetic_negatives: int = field(default=64, metadata=opt(
        "--synthetic-negatives", help="noise windows made in code added to every fit"))
    noise_eval: int = 100
    seed: int = field(default=0, metadata=opt("--seed", help="random seed of the splits"))

    def __post_init__(self) -> None:
        if not self.shots or min(self.shots) < 1:
            raise ValueError("shots must be whole numbers >= 1")
        if self.repeats < 1:
            raise ValueError("repeats must be >= 1")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError("the test fraction must be between 0 and 1")
        if self.synthetic_negatives < 0 or self.noise_eval < 0:
            raise ValueError("noise window counts must be >= 0")


@dataclass
class ExperimentData:
    """Labelled windows per backbone (same rows, same order) and their noise sets."""

    features: dict[str, Features]
    noise: dict[str, Noise | None]
    models: dict[str, EmbeddingModel]
    dataset: TrainingSet
    store: Path
    embed_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> Features:
        return next(iter(self.features.values()))


def _key(feats: Features) -> list[tuple[str, float]]:
    return [(f, round(float(s), 3)) for f, s in zip(feats.files, feats.starts, strict=True)]


def align(features: dict[str, Features]) -> dict[str, Features]:
    """Reorder every backbone's rows to the first one's, keeping rows all of them have
    (a file that failed for one backbone drops out of all: the comparison stays paired)."""
    names = list(features)
    keys = {n: _key(features[n]) for n in names}
    common = set(keys[names[0]]).intersection(*(set(keys[n]) for n in names[1:]))
    order = [k for k in keys[names[0]] if k in common]
    out = {}
    for n in names:
        index = {k: i for i, k in enumerate(keys[n])}
        out[n] = features[n].subset(np.array([index[k] for k in order], dtype=int))
    return out


def load_data(data: str | os.PathLike, backbones: Sequence[str], settings: CurveSettings,
              store: str | os.PathLike | None = None,
              audio: AudioSettings = AudioSettings(crop_mode=TRAINING_CROP_MODE),
              engine: eng.EngineSettings = eng.EngineSettings(),
              annotations: str | os.PathLike | None = None, group_pattern: str | None = None,
              progress: bool = True, echo: Callable[[str], None] = print,
              unannotated_negatives: str = UNANNOTATED_CHOICES[0]) -> ExperimentData:
    """Embed the labelled data with every backbone (cached in ``store``) plus noise sets."""
    from edgebird.training.classifier import default_store, load_training_set

    if not backbones:
        raise ValueError("name at least one backbone")
    ts = load_training_set(data, annotations, group_pattern)
    check(ts)
    echo(ts.describe())
    store = Path(store) if store else default_store()
    t0 = time.perf_counter()
    features, noise, models = {}, {}, {}
    for name in dict.fromkeys(backbones):
        model = get_backbone(name, num_threads=engine.threads, batch_size=engine.batch_size)
        models[name] = model
        features[name] = build_features(ts, store, audio, model, engine, progress=progress,
                                        echo=echo,
                                        unannotated_negatives=unannotated_negatives)
        train = synthetic_negatives(model, ts.classes, settings.synthetic_negatives,
                                    settings.seed, cache=store) \
            if settings.synthetic_negatives else None
        ev = synthetic_negatives(model, ts.classes, settings.noise_eval,
                                 settings.seed + NOISE_EVAL_SEED, cache=store) \
            if settings.noise_eval else None
        noise[name] = Noise(train.x if train is not None else _empty(model),
                            ev.x if ev is not None else _empty(model))
        echo(f"{name}: {len(features[name])} windows x {model.embedding_dim} features")
    aligned = align(features)
    notes = []
    lost = len(features[next(iter(features))]) - len(aligned[next(iter(aligned))])
    if lost:
        notes.append(f"{lost} windows were missing for some backbone and left out of all")
    skipped = aligned[next(iter(aligned))].skipped
    if skipped:
        notes.append(f"{len(skipped)} files could not be read and were skipped")
    return ExperimentData(aligned, noise, models, ts, store, time.perf_counter() - t0, notes)


def _empty(model: EmbeddingModel) -> np.ndarray:
    return np.zeros((0, model.embedding_dim), dtype=np.float32)


def candidates(pairs: Sequence[tuple[str, str]], seed: int = 0) -> list[Candidate]:
    """(backbone, head) pairs as fresh-head factories; unknown heads fail before any work."""
    for _, head in pairs:
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; available: {', '.join(HEADS)}")
    if any(h in KERAS_HEADS for _, h in pairs):
        from edgebird.heads.dense import keras_module

        keras_module()  # a missing TensorFlow is said now, not after the embedding

    def factory(head: str) -> Callable[[int], Head]:
        return lambda repeat: fresh_head(head, seed + repeat)

    return [Candidate(b, h, factory(h)) for b, h in pairs]


def fresh_head(name: str, seed: int = 0, pos_weight: float = 1.0) -> Head:
    """A new head for one fit, with its defaults: seeded if it takes a seed; a positive-class
    weight other than 1 fails for a head without one (``make_head`` says so)."""
    params = {"seed": seed} if "seed" in params_of(name) else {}
    if pos_weight != 1.0:
        params["pos_weight"] = pos_weight
    return make_head(name, **params)


@dataclass
class CurveResult:
    rows: list[dict]
    shots: list[int]
    limit: int
    splits: list[Split]
    seconds: float
    dropped: list[int]


def run_curve(data: ExperimentData, pairs: Sequence[tuple[str, str]], s: CurveSettings,
              echo: Callable[[str], None] = print) -> CurveResult:
    """Every (backbone, head) pair at every usable shot count on the same splits."""
    t0 = time.perf_counter()
    missing = sorted({b for b, _ in pairs} - set(data.features))
    if missing:
        raise ValueError(f"backbones not loaded: {', '.join(missing)}")
    splits = make_splits(data.first, s.repeats, s.test_fraction, s.seed, s.open_set)
    shots, limit = usable_shots(splits, s.shots)
    dropped = [k for k in s.shots if k not in shots]
    if not shots:
        raise DatasetError(f"every requested shot count is above what the data gives: the "
                           f"smallest class has {limit} training windows per split; ask for "
                           f"--shots {limit} or fewer")
    if dropped:
        echo(f"shots {', '.join(map(str, dropped))} dropped: the smallest class has {limit} "
             "training windows per split")
    rows = learning_curve(data.features, data.noise, candidates(pairs, s.seed), splits, shots,
                          echo)
    return CurveResult(rows, shots, limit, splits, time.perf_counter() - t0, dropped)


def unlabelled_pool(folder: str | os.PathLike, data: ExperimentData, backbone: str,
                    audio: AudioSettings, engine: eng.EngineSettings,
                    progress: bool = True, echo: Callable[[str], None] = print) -> Pool:
    """Every window of the recordings under ``folder`` (truth unknown), embedded into the
    experiment's store."""
    from edgebird.pipeline.embed import embed_files

    summary = embed_files([folder], data.store, replace(audio, crop_mode="segments"), engine,
                          data.models[backbone], progress=progress, echo=echo)
    if not summary.entries:
        raise DatasetError(f"no readable recordings in {folder} (see error_log.txt in "
                           f"{data.store})")
    x = np.concatenate([e.load()[1] for e in summary.entries]).astype(np.float32)
    n_classes = len(data.first.classes)
    return Pool(x, np.full((len(x), n_classes), np.nan))


@dataclass
class PseudoResult:
    rows: list[dict]
    settings: PseudoSettings
    backbone: str
    head: str
    pool_sizes: dict[str, int]
    seconds: float


def run_pseudo(data: ExperimentData, backbone: str, head: str, s: PseudoSettings,
               curve: CurveSettings, extra_pool: Pool | None = None, noise_pool: int = 50,
               echo: Callable[[str], None] = print) -> PseudoResult:
    """Pseudo-labelling rounds on the same splits as the curves, for each positive weight."""
    t0 = time.perf_counter()
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; available: {', '.join(HEADS)}")
    feats = data.features[backbone]
    splits = make_splits(data.first, curve.repeats, curve.test_fraction, curve.seed,
                         curve.open_set)
    _, limit = usable_shots(splits, [s.shots])
    if s.shots > limit:
        raise DatasetError(f"--shots {s.shots} is more than the data gives: the smallest class "
                           f"has {limit} training windows per split")
    model = data.models[backbone]
    noise_rows = synthetic_negatives(model, feats.classes, noise_pool,
                                     curve.seed + NOISE_POOL_SEED, cache=data.store) \
        if noise_pool else None
    rows, sizes = [], {}
    for w in s.pos_weights:
        for split in splits:
            pool = split_pool(feats.x, feats.y, split, split.draw(s.shots))
            sizes["hidden labels"] = len(pool)
            if noise_rows is not None:
                pool = pool.concat(Pool(noise_rows.x, np.zeros_like(noise_rows.y, dtype=float)))
                sizes["synthetic noise"] = len(noise_rows)
            if extra_pool is not None:
                pool = pool.concat(extra_pool)
                sizes["unlabelled recordings"] = len(extra_pool)
            for r in run_rounds(lambda w=w, rep=split.repeat: fresh_head(
                    head, curve.seed + rep, w), feats.x, feats.y, split,
                    data.noise.get(backbone), feats.classes, pool, s):
                rows.append({"backbone": backbone, "head": head, "pos_weight": w,
                             "repeat": split.repeat, **r})
        last = [r for r in rows if r["pos_weight"] == w and r["round"] == s.rounds]
        first = [r for r in rows if r["pos_weight"] == w and r["round"] == 0]
        echo(f"pseudo-labelling, positive weight {w:g}: macro F1 "
             f"{np.mean([r['f1'] for r in first]):.3f} -> "
             f"{np.mean([r['f1'] for r in last]):.3f} after {s.rounds} rounds")
    return PseudoResult(rows, s, backbone, head, sizes, time.perf_counter() - t0)


#: The standard comparison ``edgebird experiment report`` runs.
REPORT_PAIRS = (
    [("birdnet", h) for h in HEADS]
    + [(b, h) for b in ("birdnet-fusion", "handcrafted") for h in ("logreg", "svm-linear",
                                                                   "svm-rbf")]
)
REPORT_POS_WEIGHTS = (0.5, 1.0, 2.0)


# -- the commands: load, run, write ---------------------------------------------------------
@dataclass(frozen=True)
class DataOptions:
    """Where the labelled data is and how it is embedded (``edgebird train``'s options)."""

    store: str | os.PathLike | None = field(default=None, metadata=opt(
        "--store", help="embedding store (default ~/.cache/edgebird/store)"))
    audio: AudioSettings = AudioSettings(crop_mode=TRAINING_CROP_MODE)
    engine: eng.EngineSettings = eng.EngineSettings()
    annotations: str | os.PathLike | None = field(default=None, metadata=opt(
        "--annotations", metavar="TABLE", help="CSV (file,begin,end,label) or Raven selection "
                                               "table instead of class folders"))
    group_pattern: str | None = field(default=None, metadata=opt(
        "--group-pattern", metavar="REGEX", help="regex on file names whose first group is "
        "the recording id, e.g. '^(XC\\d+)' (default: every file is its own recording)"))
    unannotated_negatives: str = field(default=UNANNOTATED_CHOICES[0], metadata=opt(
        "--unannotated-negatives", choices=UNANNOTATED_CHOICES,
        help="with --annotations: windows of a recording that overlap no annotation train as "
             "background; auto: for the recordings the table marks complete (a 'complete' "
             "column saying yes)"))
    progress: bool = True


def _load(data, backbones, s: CurveSettings, o: DataOptions, echo) -> ExperimentData:
    return load_data(data, backbones, s, o.store, o.audio, o.engine, o.annotations,
                     o.group_pattern, o.progress, echo, o.unannotated_negatives)


def _write_curve(result: CurveResult, out: Path, title: str) -> list[str]:
    from edgebird.experiments import report as rep

    lines, summary = rep.curve_section(result)
    rep.write_csv(result.rows, out / "curve_runs.csv")
    rep.write_csv(summary, out / "curve_summary.csv")
    rep.plot_curve(summary, out / "learning_curve.png", title)
    return lines


def _write_pseudo(result: PseudoResult, out: Path) -> list[str]:
    from edgebird.experiments import report as rep

    lines, summary = rep.pseudo_section(result)
    rep.write_csv(result.rows, out / "pseudo_runs.csv")
    rep.write_csv(summary, out / "pseudo_summary.csv")
    return lines


def _intro(data: ExperimentData, source: str, audio: AudioSettings) -> list[str]:
    ts = data.dataset
    models = ", ".join(f"{n} ({m.embedding_dim} features, `{m.fingerprint}`)"
                       for n, m in data.models.items())
    return [f"Data: `{source}`: {len(ts.classes)} classes, {len(ts.files)} files, "
            f"{len(data.first)} windows (crop mode `{audio.crop_mode}`). Backbones: "
            f"{models}. Embedding took "
            f"{data.embed_seconds:.0f} s (cached in `{data.store}`).",
            *[f"Note: {n}" for n in data.notes]]


def curve_experiment(data: str | os.PathLike, out: str | os.PathLike,
                     pairs: Sequence[tuple[str, str]], s: CurveSettings = CurveSettings(),
                     o: DataOptions = DataOptions(),
                     echo: Callable[[str], None] = print) -> Path:
    """``edgebird experiment curve``: learning curves into ``out`` (runs and summary CSVs,
    learning_curve.png, curve.md). Returns the markdown file."""
    from edgebird.experiments import report as rep

    out = Path(out)
    exp = _load(data, [b for b, _ in pairs], s, o, echo)
    result = run_curve(exp, pairs, s, echo)
    lines = _write_curve(result, out, f"{Path(data).name}: learning curves")
    return rep.write_markdown(out / "curve.md", "Learning curves",
                              _intro(exp, str(data), o.audio) + [
                                  "", "![learning curves](learning_curve.png)"],
                              [lines, rep.protocol_lines()])


def pseudo_experiment(data: str | os.PathLike, out: str | os.PathLike, backbone: str = "birdnet",
                      head: str = "logreg", ps: PseudoSettings = PseudoSettings(),
                      s: CurveSettings = CurveSettings(), o: DataOptions = DataOptions(),
                      unlabelled: str | os.PathLike | None = None,
                      echo: Callable[[str], None] = print) -> Path:
    """``edgebird experiment pseudo``: pseudo-labelling rounds into ``out`` (CSVs and
    pseudo.md). Returns the markdown file."""
    from edgebird.experiments import report as rep

    out = Path(out)
    exp = _load(data, [backbone], s, o, echo)
    pool = unlabelled_pool(unlabelled, exp, backbone, o.audio, o.engine, o.progress, echo) \
        if unlabelled else None
    result = run_pseudo(exp, backbone, head, ps, s, pool, echo=echo)
    return rep.write_markdown(out / "pseudo.md", "Pseudo-labelling",
                              _intro(exp, str(data), o.audio),
                              [_write_pseudo(result, out), rep.protocol_lines()])


def report_experiment(data: str | os.PathLike, out: str | os.PathLike,
                      s: CurveSettings = CurveSettings(),
                      ps: PseudoSettings = PseudoSettings(pos_weights=REPORT_POS_WEIGHTS),
                      o: DataOptions = DataOptions(),
                      unlabelled: str | os.PathLike | None = None,
                      pairs: Sequence[tuple[str, str]] = REPORT_PAIRS,
                      echo: Callable[[str], None] = print) -> Path:
    """``edgebird experiment report``: the standard comparisons (``REPORT_PAIRS``, then
    pseudo-labelling on BirdNET + logreg) into ``out/EXPERIMENTS.md``, its CSVs and plot in
    ``out/experiments/``. Returns EXPERIMENTS.md."""
    import platform

    from edgebird import __version__
    from edgebird.experiments import report as rep

    t0 = time.perf_counter()
    out = Path(out)
    exp = _load(data, [b for b, _ in pairs], s, o, echo)
    curve = run_curve(exp, pairs, s, echo)
    files = out / "experiments"  # beside EXPERIMENTS.md, so `-o docs` keeps docs/ tidy
    curve_lines = _write_curve(curve, files, f"{Path(data).name}: learning curves")
    pool = unlabelled_pool(unlabelled, exp, "birdnet", o.audio, o.engine, o.progress, echo) \
        if unlabelled else None
    pseudo = run_pseudo(exp, "birdnet", "logreg", ps, s, pool, echo=echo)
    pseudo_lines = _write_pseudo(pseudo, files)
    total = time.perf_counter() - t0
    intro = _intro(exp, str(data), o.audio) + [
        "", f"Made by `edgebird experiment report` (edgebird {__version__}, Python "
        f"{platform.python_version()}, {eng.available_cores()} cores) in {total:.0f} s; "
        f"seed {s.seed}. Every number below is computed by that command; rerun it to "
        "reproduce them. Every fit is in `experiments/curve_runs.csv` and "
        "`experiments/pseudo_runs.csv`.", "",
        "![learning curves](experiments/learning_curve.png)"]
    return rep.write_markdown(out / "EXPERIMENTS.md", "edgebird experiments", intro,
                              [rep.findings(curve.rows, pseudo), curve_lines, pseudo_lines,
                               rep.protocol_lines()])
