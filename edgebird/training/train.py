"""Cross-validate a head on embeddings, honestly, then train the final one on everything.

This module is the protocol only: which rows train and which are scored. The head is any
exportable head of ``edgebird.heads`` (``TrainSettings.head``; default the Keras dense head,
``heads.dense``, where TensorFlow and the augmentation live), called through its estimator
interface: ``clone``, ``fit``, ``scores``, and for heads that tune their length
(``tunes_epochs``) ``fit(..., validation=)``, ``best_epoch_`` and ``fit_epochs``.

Honesty rules: folds are grouped by recording (clips of one recording never sit on both sides);
early stopping (for heads with epochs) and the per-class thresholds come from an inner grouped
k-fold of the training folds (``inner_fit``), never from the fold being scored; synthetic noise
is added to training only. The final head is trained on all data (for the median epoch count
of the folds), with the median of the folds' thresholds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np
from sklearn.base import clone

from edgebird.heads import HEADS, Head, exportable_heads, make_head, params_of
from edgebird.heads.anchored import for_columns
from edgebird.heads.dense import LOSSES, UPSAMPLING_MODES
from edgebird.heads.linear import LogisticHead
from edgebird.options import opt
from edgebird.training.background import DEFAULT_BACKGROUND_WINDOWS
from edgebird.training.dataset import AUTO_FOLDS, MAX_AUTO_FOLDS, resolve_folds
from edgebird.training.features import Features
from edgebird.training.metrics import checked_thresholds, class_metrics, false_positive_rate
from edgebird.training.windows import DEFAULT_MAX_WINDOWS, LONG_RECORDING_WINDOWS

#: Settings of the procedure itself, not of a head (``seed`` seeds both).
PROTOCOL_FIELDS = ("head", "head_params", "autotune", "mixup", "folds", "val_fraction",
                   "synthetic_negatives", "holdout_species", "seed",
                   "max_windows_per_recording", "background", "background_windows")


@dataclass(frozen=True)
class TrainSettings:
    """Head and training options. Defaults were chosen on real recordings (devbirds, see
    docs/TRAINING.md) and differ from BirdNET-Analyzer's where noted: learning rate 1e-2
    (BNA's 1e-4 leaves a few-dozen-clip set undertrained after 100 epochs: macro F1 0.72 vs
    0.88 on the same folds), up to 100 epochs with early stopping, 64 synthetic noise windows
    as background. Fields named like a parameter of the chosen ``head`` are passed to it;
    ``mixup`` with the dense head is the ``dense-mixup`` head."""

    head: str = field(default="anchored", metadata=opt(
        "--head", choices=exportable_heads(),
        help="the head trained on the embeddings (anchored: logistic regression starting "
             "from BirdNET's own classifier for the species it knows; dense: the Keras "
             "head; only dense needs TensorFlow to train)"))
    #: parameters of the head that have no option of their own (anchored's ``C``, ...), as
    #: ``((name, value), ...)``; ``--autotune`` sets them
    head_params: tuple = ()
    autotune: int = field(default=0, metadata=opt(
        "--autotune", nargs="?", const=20, metavar="TRIALS",
        help="search the head's settings first (optuna; TRIALS trials, flag alone: 20), each "
             "scored by the macro AUPRC of a grouped cross-validation; 0: off"))
    hidden_units: int = field(default=0, metadata=opt(
        "--hidden-units", help="units of a hidden ReLU layer; 0: none"))
    dropout: float = field(default=0.0, metadata=opt(
        "--dropout", help="dropout rate before each dense layer"))
    epochs: int = field(default=100, metadata=opt(
        "--epochs", help="training epochs at most (early stopping)"))
    batch_size: int = field(default=32, metadata=opt(
        "--batch-size", help="the head's training mini-batch, in windows (BirdNET-Analyzer's "
                             "--batch_size)"))
    learning_rate: float = field(default=1e-2, metadata=opt(
        "--learning-rate", help="peak learning rate (warm-up, then cosine decay)"))
    loss: str = field(default="bce", metadata=opt(
        "--focal-loss", const="focal", help="focal loss instead of BCE"))
    focal_gamma: float = field(default=2.0, metadata=opt(
        "--focal-loss-gamma", help="focal loss: focusing parameter gamma"))
    focal_alpha: float = field(default=0.25, metadata=opt(
        "--focal-loss-alpha", help="focal loss: weight alpha of the positives"))
    label_smoothing: float = field(default=0.0, metadata=opt(
        "--label-smoothing", nargs="?", const=0.1, help="label smoothing (flag alone: 0.1)"))
    mixup: bool = field(default=False, metadata=opt(
        "--mixup", help="mixup augmentation: blend pairs of training windows and labels"))
    upsampling_mode: str = field(default="repeat", metadata=opt(
        "--upsampling-mode", choices=UPSAMPLING_MODES,
        help="how small classes are grown (with --upsampling-ratio)"))
    upsampling_ratio: float = field(default=0.0, metadata=opt(
        "--upsampling-ratio", help="grow small classes to this fraction of the largest; "
                                   "0: off"))
    patience: int = 10
    folds: int = field(default=AUTO_FOLDS, metadata=opt(
        "--folds", help=f"cross-validation folds, grouped by recording; {AUTO_FOLDS}: auto "
                        f"(up to {MAX_AUTO_FOLDS}, fewer when a class has fewer recordings, "
                        "1 when one has a single recording); 1: one validation split"))
    val_fraction: float = 0.2
    synthetic_negatives: int = field(default=64, metadata=opt(
        "--synthetic-negatives", help="noise windows made in code (rain, wind, engines...) "
                                      "added as background; 0: off"))
    holdout_species: int = field(default=10, metadata=opt(
        "--holdout-species", help="measure false positives on up to N classes held out in "
                                  "turn; 0: skip"))
    seed: int = field(default=0, metadata=opt("--seed", help="random seed"))
    max_windows_per_recording: int = field(default=DEFAULT_MAX_WINDOWS, metadata=opt(
        "--max-windows-per-recording",
        help=f"a labelled recording of {LONG_RECORDING_WINDOWS}+ windows trains on every "
             "window that holds sound (bird-band activity above its own floor), at most this "
             "many (the strongest); shorter clips keep the smart crop; 0: smart crop for all"))
    background: str = field(default="", metadata=opt(
        "--background", metavar="DIR",
        help="unlabelled audio from the deployment site, without the target species: "
             "sampled windows train as background, and held-out recordings give false "
             "positives per hour"))
    background_windows: int = field(default=DEFAULT_BACKGROUND_WINDOWS, metadata=opt(
        "--background-windows",
        help="at most this many --background windows join training (sampled with --seed)"))

    def __post_init__(self) -> None:
        checks = [
            (self.hidden_units >= 0, "hidden units must be >= 0"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch size must be >= 1"),
            (self.learning_rate > 0, "learning rate must be > 0"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (0.0 <= self.label_smoothing < 0.5, "label smoothing must be in [0, 0.5)"),
            (self.upsampling_mode in UPSAMPLING_MODES,
             f"upsampling mode must be one of {', '.join(UPSAMPLING_MODES)}"),
            (0.0 <= self.upsampling_ratio <= 1.0, "upsampling ratio must be in [0, 1]"),
            (self.folds >= 0, f"folds must be >= 1, or {AUTO_FOLDS} (auto)"),
            (0.05 <= self.val_fraction <= 0.5, "validation fraction must be in [0.05, 0.5]"),
            (self.synthetic_negatives >= 0, "synthetic negatives must be >= 0"),
            (self.max_windows_per_recording >= 0, "max windows per recording must be >= 0"),
            (self.background_windows >= 1, "background windows must be >= 1"),
            (self.autotune >= 0, "autotune trials must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        self.make_head()  # an unknown head, or an option it does not take, fails now

    def head_name(self) -> str:
        return "dense-mixup" if self.mixup and self.head == "dense" else self.head

    def make_head(self) -> Head:
        """A fresh, unfitted head: ``head`` with the fields named like its parameters.

        Raises ValueError for a head that cannot be exported, or for options left changed
        that only another head uses (``--hidden-units`` with logreg would silently do
        nothing)."""
        name = self.head_name()
        if name not in exportable_heads():
            raise ValueError(f"edgebird train exports its head; {name!r} cannot be exported "
                             f"(exportable heads: {', '.join(exportable_heads())})")
        if self.mixup and not getattr(HEADS[name], "mixup", False):
            raise ValueError(f"mixup needs the dense head (--head dense), not {name}")
        own = set(params_of(name))
        defaults = {f.name: f.default for f in fields(self) if f.name not in PROTOCOL_FIELDS}
        unused = [k for k in defaults if k not in own and getattr(self, k) != defaults[k]
                  and any(k in params_of(n) for n in HEADS)]
        if unused:
            users = sorted({n for n in HEADS for k in unused if k in params_of(n)})
            raise ValueError(f"the {name} head does not use {', '.join(unused)} (an option "
                             f"of --head {' / '.join(users)})")
        given = dict(self.head_params)
        foreign = sorted(set(given) - own)
        if foreign:
            raise ValueError(f"the {name} head has no parameter {', '.join(foreign)}")
        return make_head(name, **{k: getattr(self, k) for k in params_of(name)
                                  if k in defaults or k == "seed"}, **given)


@dataclass
class HeadFit:
    """A fitted head and what the report and export read from it."""

    head: Head
    layers: list  # [(weights [in, out], bias [out], relu)] in logit space
    history: dict
    best_epoch: int | None  # None: a head without epochs
    keras_model: object = None

    @classmethod
    def of(cls, head: Head) -> HeadFit:
        return cls(head, head.layers_(), getattr(head, "history_", {}),
                   getattr(head, "best_epoch_", None), getattr(head, "model_", None))


@dataclass
class FoldResult:
    fold: int
    layers: list
    thresholds: np.ndarray
    metrics: list[dict]
    baseline: list[dict]
    history: dict
    best_epoch: int | None
    sizes: dict
    test_y: np.ndarray
    test_p: np.ndarray
    test_kind: np.ndarray
    #: rows of the features held out in this fold (``birdnet_prior`` scores them again)
    test_index: np.ndarray | None = None


@dataclass
class TrainResult:
    classes: list[str]
    settings: TrainSettings
    folds: list[FoldResult]
    final: HeadFit
    thresholds: np.ndarray
    overall: list[dict]
    baseline_overall: list[dict]
    noise_fp: dict
    holdout: list[dict]
    test_metrics: list[dict] | None = None
    notes: list[str] = field(default_factory=list)
    #: BirdNET restricted to the classes it knows vs the head (``birdnet_prior.compare``)
    birdnet: dict = field(default_factory=dict)
    #: ``--background``: false positives per hour on held-out site recordings
    #: (``background.false_positives_per_hour``), or why there is no number
    site_fp: dict = field(default_factory=dict)
    #: windows trained per class and their recordings (``features.windows_per_class``)
    windows: dict = field(default_factory=dict)
    #: ``--autotune``: every trial (number, state, AUPRC, params), in order
    autotune: list[dict] = field(default_factory=list)

    @property
    def cross_validated(self) -> bool:
        """False when no recording could be held out (``--folds 1`` with a class of one
        recording): then ``overall`` is empty and nothing was measured on held-out data."""
        return bool(self.folds)

    def summary(self) -> str:
        """One line for the console: the cross-validated figures, or why there are none."""
        if not self.cross_validated:
            return "not cross-validated (" + "; ".join(self.notes[:1]) + ")"
        m = self.overall[0]
        return f"cross-validated macro F1 {m['f1@thr']:.3f} (AUPRC {m['auprc']:.3f})"


# -- splits ---------------------------------------------------------------------------------
def grouped_splits(strata: np.ndarray, groups: np.ndarray, k: int,
                   seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K grouped, stratified folds (stratum = label combination); k=1: one split with
    about 20 % of the groups held out."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    n_splits = max(k, 2) if k > 1 else max(2, min(5, len(np.unique(groups))))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "least populated class has only N members"
        warnings.simplefilter("ignore", UserWarning)
        splits = list(splitter.split(np.zeros(len(strata)), strata, groups))
    return splits if k > 1 else splits[:1]


def inner_fit(train: Features, head: Head, s: TrainSettings, negatives: Features | None,
              ) -> tuple[HeadFit, np.ndarray, dict[str, str]]:
    """Fit a clone of ``head`` on ``train`` with thresholds (and, for heads with epochs, an
    epoch count) that never look at held-out data: an inner grouped k-fold (early stopping on
    each inner validation part) gives out-of-fold scores for every training window, on which
    per-class F1-optimal thresholds are chosen, each kept only where it does better
    than 0.5 on inner scores it was not chosen on (``checked_thresholds``; the third value
    says, per class that fell back to 0.5, why); the head is then fitted on all of ``train``
    (for the inner folds' median best epoch count). Small sets get more out of this than from
    one small validation split. Heads without epochs use the inner folds for thresholds only.
    """
    strata = train.strata()
    most = max(len(np.unique(train.groups[strata == v])) for v in np.unique(strata))
    k = min(max(2, int(round(1 / s.val_fraction))), most)  # small sets: fewer inner folds
    if k < 2:
        return HeadFit.of(clone(head).fit(*_with(train, negatives))), \
            np.full(len(train.classes), 0.5), {}
    oof = np.zeros(train.y.shape, dtype=np.float64)
    parts = np.zeros(len(train), dtype=int)
    epochs = []
    for j, (tr, va) in enumerate(grouped_splits(strata, train.groups, k, s.seed + 17)):
        parts[va] = j
        part, val = train.subset(tr), train.subset(va)
        inner = clone(head)
        if head.tunes_epochs:
            inner.fit(*_with(part, negatives), validation=(val.x, val.y))
            epochs.append(inner.best_epoch_)
        else:
            inner.fit(*_with(part, negatives))
        oof[va] = inner.scores(val.x)
    thresholds, why = checked_thresholds(train.y, oof, parts)
    # A class with one training recording sat in one inner validation part and was absent
    # from that part's training: its out-of-fold scores say nothing, so it keeps 0.5.
    one = [n < 2 for n in train.groups_per_class().values()]
    thresholds[one] = 0.5
    fallbacks = {train.classes[c]: w for c, w in why.items() if not one[c]}
    return HeadFit.of(_for_epochs(head, epochs).fit(*_with(train, negatives))), thresholds, \
        fallbacks


def _for_epochs(head: Head, epochs: int | list[int] | None, keep_model: bool = False) -> Head:
    """A fresh clone of ``head`` that trains for the median of ``epochs`` (if it has epochs)."""
    fresh = clone(head)
    if head.tunes_epochs and epochs:
        fresh.set_params(fit_epochs=int(np.median(epochs)))
    if keep_model and "keep_model" in fresh.get_params():
        fresh.set_params(keep_model=True)
    return fresh


def _with(f: Features, negatives: Features | None) -> tuple[np.ndarray, np.ndarray]:
    if negatives is None or not len(negatives):
        return f.x, f.y
    return np.concatenate([f.x, negatives.x]), np.concatenate([f.y, negatives.y])


# -- the baseline -------------------------------------------------------------------------------
def logistic_baseline(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
    """One-vs-rest logistic regression on standardised embeddings: is the head worth it?"""
    return LogisticHead(balanced=False).fit(x_tr, y_tr).scores(x_te)


# -- the whole procedure ------------------------------------------------------------------------
def _mean_rows(tables: list[list[dict]]) -> list[dict]:
    out = []
    for rows in zip(*tables, strict=True):
        row = {"class": rows[0]["class"]}
        for key in rows[0]:
            if key == "class":
                continue
            vals = np.array([r[key] for r in rows], dtype=float)
            if key in ("tp", "fp", "tn", "fn", "positives", "windows"):
                row[key] = int(np.nansum(vals))
            else:
                row[key] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
                row[key + "_std"] = float(np.nanstd(vals)) if np.isfinite(vals).any() else 0.0
        out.append(row)
    return out


def train_classifier(feats: Features, s: TrainSettings, negatives: Features | None = None,
                     noise_eval: Features | None = None, test: Features | None = None,
                     echo: Callable[[str], None] = print,
                     prior: tuple[np.ndarray, np.ndarray] | None = None) -> TrainResult:
    """Cross-validate, then train the final head on everything.

    ``negatives``: synthetic background rows added to every training split (never scored);
    ``noise_eval``: other synthetic rows on which false positives are measured; ``test``: an
    optional separate test set scored by the final model; ``prior``: ``(W [dim, classes],
    b [classes])``, BirdNET's classifier for the classes it knows (zero columns for the
    others), which a head with a prior (``anchored``) starts from; other heads ignore it.
    """
    classes = feats.classes
    trials: list[dict] = []
    if s.autotune:
        from edgebird.training.autotune import autotune

        s, trials = autotune(feats, s, negatives, prior, echo)
    head = with_prior(s.make_head(), prior)
    folds: list[FoldResult] = []
    k, folds_note = resolve_folds(s.folds, feats.groups_per_class())
    if folds_note:
        echo(folds_note)
    why = _holdout_impossible(feats) if k == 1 else ""
    splits = [] if why else grouped_splits(feats.strata(), feats.groups, k, s.seed)
    notes = [folds_note] if folds_note else []
    if k == 1 and not why and _holdout_impossible(feats, splits[0]):
        # few recordings per class: a fifth held out misses a class; try half
        splits = grouped_splits(feats.strata(), feats.groups, 2, s.seed)[:1]
        why = _holdout_impossible(feats, splits[0])
        notes.append("one split: half of the recordings held out (a fifth would leave a "
                     "class without a recording on one side)")
    if why:
        return _train_without_validation(feats, head, s, negatives, noise_eval, test, why,
                                         echo, notes)
    fallback_notes: list[str] = []
    for i, (tr_idx, te_idx) in enumerate(splits, start=1):
        train, held = feats.subset(tr_idx), feats.subset(te_idx)
        fit, thresholds, fallbacks = inner_fit(train, head, s, negatives)
        if fallbacks:  # one line per fold: the classes, then each one's F1 (chosen vs 0.5)
            fallback_notes.append(
                f"fold {i}: threshold 0.5 kept for {len(fallbacks)} class(es) where a "
                "threshold chosen on part of the inner out-of-fold scores did no better on "
                "the rest: " + "; ".join(f"{c} ({w.split('(')[-1]}" for c, w in fallbacks.items()))
        few = sorted(c for c, n in train.groups_per_class().items() if n < 2)
        if few:
            notes.append(f"fold {i}: threshold 0.5 kept for {', '.join(few[:5])} (one "
                         "training recording: no out-of-fold scores to choose one on)")
        p_te = fit.head.scores(held.x)
        p_base = logistic_baseline(*_with(train, negatives), held.x)
        folds.append(FoldResult(
            i, fit.layers, thresholds, class_metrics(held.y, p_te, classes, thresholds),
            class_metrics(held.y, p_base, classes, np.full(len(classes), 0.5)),
            fit.history, fit.best_epoch,
            {"train": len(train), "test": len(held)}, held.y, p_te, held.kind,
            test_index=te_idx))
        m = folds[-1].metrics[0]
        echo(f"fold {i}/{len(splits)}: macro F1 {m['f1@thr']:.3f} at the chosen thresholds "
             f"({m['f1@0.5']:.3f} at 0.5), AUPRC {m['auprc']:.3f}; logistic baseline F1@0.5 "
             f"{folds[-1].baseline[0]['f1@0.5']:.3f}"
             + ("" if fit.best_epoch is None else f"; epochs {fit.best_epoch}"))
    epochs = [f.best_epoch for f in folds] if head.tunes_epochs else None
    thresholds = np.median(np.stack([f.thresholds for f in folds]), axis=0)
    notes += fallback_notes
    overall = _mean_rows([f.metrics for f in folds])
    for row, t in zip(overall[1:], thresholds, strict=True):
        # the mean row carries the exported thresholds (the folds' median), as the report
        # and _Thresholds.csv do; each fold's row keeps the threshold it was scored at
        row["threshold"] = float(t)
        row.pop("threshold_std", None)
    everything = feats if negatives is None else feats.concat(negatives)
    final = HeadFit.of(_for_epochs(head, epochs, keep_model=True).fit(everything.x,
                                                                       everything.y))
    noise_fp = _noise_fp(final, noise_eval, thresholds)
    result = TrainResult(
        classes, s, folds, final, thresholds, overall,
        _mean_rows([f.baseline for f in folds]), noise_fp,
        holdout_species_fp(everything, _for_epochs(head, epochs), s, thresholds, echo),
        notes=notes)
    if test is not None and len(test):
        p = final.head.scores(test.x)
        result.test_metrics = class_metrics(test.y, p, classes, thresholds)
    if trials:
        result.autotune = trials
        result.notes.append(
            f"settings chosen by --autotune ({len(trials)} trials) on these same recordings: "
            "the cross-validated figures lean optimistic by however much the search fitted "
            "them; a --test-data set it never saw is the unbiased figure")
    return result


def with_prior(head: Head, prior: tuple[np.ndarray, np.ndarray] | None) -> Head:
    """``head`` with ``prior`` set when it takes one (``prior_weights``), else unchanged."""
    if prior is None or "prior_weights" not in head.get_params():
        return head
    return clone(head).set_params(prior_weights=prior[0], prior_bias=prior[1])


def _holdout_impossible(feats: Features,
                        split: tuple[np.ndarray, np.ndarray] | None = None) -> str:
    """Why the one held-out split of ``--folds 1`` would measure nothing ('' if it would
    not): a class with a single recording, or (given the ``split``) a class with no
    recording on one side, which is then untrained or unscored."""
    one = sorted(c for c, n in feats.groups_per_class().items() if n < 2)
    if one:
        return (f"{len(one)} class(es) have a single recording ({', '.join(one[:5])}): "
                "holding it out would leave the class out of training")
    if split is None:
        return ""
    tr, te = (feats.subset(i).groups_per_class() for i in split)
    lost = sorted(c for c in feats.classes if not tr[c] or not te[c])
    if lost:
        return (f"no split of the recordings keeps {', '.join(lost[:5])} on both sides "
                "(training and held out)")
    return ""


def _train_without_validation(feats: Features, head: Head, s: TrainSettings,
                              negatives: Features | None, noise_eval: Features | None,
                              test: Features | None, why: str,
                              echo: Callable[[str], None],
                              earlier: list[str] | None = None) -> TrainResult:
    """``--folds 1`` when no recording can be held out: the final head on everything, its
    thresholds from the inner fit where a class has two recordings (0.5 otherwise), and no
    cross-validated figure at all (the report says why). The synthetic-noise false positives
    and an optional test set are still measured: neither was trained on."""
    classes = feats.classes
    fit, thresholds, fallbacks = inner_fit(feats, head, s, negatives)
    earlier = list(earlier or []) + [f"threshold 0.5 kept for {c}: {w}"
                                     for c, w in fallbacks.items()]
    epochs = [fit.best_epoch] if head.tunes_epochs and fit.best_epoch else None
    everything = feats if negatives is None else feats.concat(negatives)
    final = HeadFit.of(_for_epochs(head, epochs, keep_model=True).fit(everything.x,
                                                                       everything.y))
    note = f"cross-validation was not possible: {why}"
    echo(f"{note}; the model is trained on all recordings, with no held-out measurement")
    result = TrainResult(classes, s, [], final, thresholds, [], [],
                         _noise_fp(final, noise_eval, thresholds),
                         holdout_species_fp(everything, _for_epochs(head, epochs), s,
                                            thresholds, echo),
                         notes=[note] + earlier)
    if test is not None and len(test):
        result.test_metrics = class_metrics(test.y, final.head.scores(test.x), classes,
                                            thresholds)
    return result


def _noise_fp(final: HeadFit, noise_eval: Features | None, thresholds: np.ndarray) -> dict:
    """False positives of the final head on synthetic noise it never trained on."""
    if noise_eval is None or not len(noise_eval):
        return {}
    p = final.head.scores(noise_eval.x)
    return {"windows": len(noise_eval),
            "fp_rate@thr": false_positive_rate(p, thresholds),
            "fp_rate@0.5": false_positive_rate(p, np.full(len(thresholds), 0.5)),
            "max_score": float(p.max())}


def holdout_species_fp(feats: Features, head: Head, s: TrainSettings,
                       thresholds: np.ndarray, echo: Callable[[str], None]) -> list[dict]:
    """Open-set false positives: for each of up to ``s.holdout_species`` classes, fit a clone
    of ``head`` on the others (without it) and count how often its windows fire any remaining
    class."""
    n = len(feats.classes)
    if n < 3 or s.holdout_species <= 0:
        return []
    out = []
    for c in range(min(n, s.holdout_species)):
        held = (feats.y[:, c] > 0.5)
        keep_cols = [j for j in range(n) if j != c]
        rest = feats.subset(np.flatnonzero(~held))
        p = clone(for_columns(head, keep_cols)).fit(rest.x, rest.y[:, keep_cols]).scores(
            feats.x[held])
        out.append({"held_out": feats.classes[c], "windows": int(held.sum()),
                    "fp_rate@thr": false_positive_rate(p, thresholds[keep_cols]),
                    "fp_rate@0.5": false_positive_rate(p, np.full(n - 1, 0.5))})
    mean = float(np.mean([r["fp_rate@thr"] for r in out]))
    echo(f"held-out species: a class the model never saw fires some class on "
         f"{mean:.1%} of its windows (mean over {len(out)} classes)")
    return out
