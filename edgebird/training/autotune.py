"""``--autotune N``: choose the head's settings by a search scored on grouped cross-validation.

BirdNET-Analyzer's ``--autotune`` searches its Keras head's settings; edgebird searches those
of whichever exportable head is chosen (``SPACES``): the anchored and logistic heads' penalty
``C`` and positive weight (the linear SVM's too), and for the dense head
hidden units, dropout, learning rate, label smoothing, focal loss (with its gamma and alpha),
upsampling and mixup. optuna's TPE sampler proposes settings; each trial is scored by the
macro AUPRC (threshold-free, so thresholds play no part in the choice) of a grouped k-fold
over the training set, folds drawn with another seed than the reported cross-validation's.
A trial that is already below the median of earlier trials after a fold is pruned.

Honesty: the search looks at the same recordings the report then cross-validates, so the
tuned figures lean optimistic by however much the search fitted its folds; the report says
so, and ``--test-data`` (recordings the search never saw) is the unbiased figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from sklearn.base import clone

from edgebird.training.features import Features
from edgebird.training.metrics import class_metrics

#: Folds per trial at most: the search runs many trials, so each is kept cheap.
MAX_TUNE_FOLDS = 3
#: Added to ``--seed`` for the search's folds, so they are not the reported ones.
TUNE_SEED_OFFSET = 101

Space = Callable[[object], dict]

#: The ranges and choices searched; ``_default_params`` reads the same ones, so trial 1 is the
#: settings as given only when they lie inside the space.
C_RANGE = (1e-3, 1e2)
POS_WEIGHT_RANGE = (0.5, 4.0)
HIDDEN_UNITS = (0, 128, 512, 1024)
LEARNING_RATE_RANGE = (1e-4, 1e-1)
UPSAMPLING_RATIOS = (0.0, 0.25, 0.5, 1.0)


def _linear(trial) -> dict:
    return {"head_params": (("C", trial.suggest_float("C", *C_RANGE, log=True)),
                            ("pos_weight", trial.suggest_float("pos_weight", *POS_WEIGHT_RANGE,
                                                               log=True)))}


def _dense(trial, mixup: bool) -> dict:
    p = {"hidden_units": trial.suggest_categorical("hidden_units", list(HIDDEN_UNITS)),
         "dropout": trial.suggest_float("dropout", 0.0, 0.5),
         "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATE_RANGE,
                                              log=True),
         "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
         "loss": trial.suggest_categorical("loss", ["bce", "focal"]),
         "upsampling_ratio": trial.suggest_categorical("upsampling_ratio",
                                                       list(UPSAMPLING_RATIOS))}
    if p["loss"] == "focal":
        p["focal_gamma"] = trial.suggest_float("focal_gamma", 0.5, 5.0)
        p["focal_alpha"] = trial.suggest_float("focal_alpha", 0.1, 0.9)
    if p["upsampling_ratio"] > 0:
        p["upsampling_mode"] = trial.suggest_categorical("upsampling_mode",
                                                         ["repeat", "linear", "mean"])
    if mixup:
        p["mixup"] = trial.suggest_categorical("mixup", [False, True])
    return p


#: What is searched per head (``TrainSettings.head``); heads not here have nothing to tune.
SPACES: dict[str, Space] = {"anchored": _linear, "logreg": _linear, "svm-linear": _linear,
                            "dense": lambda t: _dense(t, mixup=True),
                            "dense-mixup": lambda t: _dense(t, mixup=False)}


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ValueError("--autotune needs optuna: pip install 'edgebird[tune]'") from None
    # ERROR: optuna logs an interrupted or failed trial at WARNING with its traceback, which
    # would reach the user on Ctrl-C; each trial has edgebird's own line (``autotune``'s log).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def cv_score(feats: Features, settings, negatives: Features | None,
             splits: list[tuple[np.ndarray, np.ndarray]], prior=None,
             report: Callable[[int, float], None] | None = None) -> float:
    """Mean over ``splits`` of the held-out macro AUPRC of ``settings``' head (with
    ``prior`` where the head takes one). ``report(fold, mean so far)`` may raise to stop."""
    from edgebird.training.train import _with, with_prior

    head = with_prior(settings.make_head(), prior)
    scores = []
    for i, (tr, te) in enumerate(splits):
        train, held = feats.subset(tr), feats.subset(te)
        fitted = clone(head).fit(*_with(train, negatives))
        p = fitted.scores(held.x)
        scores.append(class_metrics(held.y, p, feats.classes,
                                    np.full(len(feats.classes), 0.5))[0]["auprc"])
        if report is not None:
            report(i, float(np.nanmean(scores)))
    return float(np.nanmean(scores))


def autotune(feats: Features, settings, negatives: Features | None = None, prior=None,
             echo: Callable[[str], None] = print) -> tuple[object, list[dict]]:
    """Search ``settings.autotune`` trials; returns the best settings (``autotune`` kept,
    so the report says they were tuned) and every trial as a row for the report."""
    from edgebird.training.dataset import resolve_folds
    from edgebird.training.train import grouped_splits

    name = settings.head
    if name not in SPACES:
        raise ValueError(f"--autotune has nothing to search for the {name} head (it tunes "
                         f"{', '.join(SPACES)})")
    optuna = _optuna()
    k, _ = resolve_folds(settings.folds, feats.groups_per_class())
    k = min(max(k, 2), MAX_TUNE_FOLDS)
    if min(feats.groups_per_class().values()) < 2:
        raise ValueError("--autotune needs two recordings of every class (its trials are "
                         "scored on recordings held out); train without it")
    splits = grouped_splits(feats.strata(), feats.groups, k, settings.seed + TUNE_SEED_OFFSET)
    space = SPACES[name]
    rows: list[dict] = []

    def objective(trial) -> float:
        try:
            trial_settings = replace(settings, **space(trial))
        except ValueError as exc:  # a combination the head refuses
            raise optuna.TrialPruned(str(exc)) from None

        def report(fold: int, value: float) -> None:
            trial.report(value, fold)
            if trial.should_prune():
                raise optuna.TrialPruned()

        return cv_score(feats, trial_settings, negatives, splits, prior, report)

    def log(study, trial) -> None:
        value = "pruned" if trial.value is None else f"AUPRC {trial.value:.4f}"
        rows.append({"trial": trial.number + 1, "state": trial.state.name.lower(),
                     "auprc": trial.value, "params": dict(trial.params)})
        best = study.best_value if any(t.value is not None for t in study.trials) else None
        echo(f"autotune trial {trial.number + 1}/{settings.autotune}: {value}"
             + ("" if best is None else f" (best so far {best:.4f})"))

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0))
    default_trial = _default_params(settings, name)
    if default_trial:
        study.enqueue_trial(default_trial)  # the defaults are trial 1: tuning can only help
    study.optimize(objective, n_trials=settings.autotune, callbacks=[log])
    if not any(t.value is not None for t in study.trials):
        raise ValueError("--autotune: every trial failed or was pruned")
    best = replace(settings, **space(optuna.trial.FixedTrial(study.best_params)))
    echo(f"autotune: best AUPRC {study.best_value:.4f} (trial {study.best_trial.number + 1}) "
         f"with {describe(study.best_params)}")
    return best, rows


def _default_params(settings, name: str) -> dict:
    """The search's names for the settings as given, so trial 1 scores them."""
    head = settings.make_head().get_params()
    if name.startswith("dense"):
        keys = ["hidden_units", "dropout", "learning_rate", "label_smoothing", "loss",
                "upsampling_ratio"]
        p = {k: getattr(settings, k) for k in keys}
        if (p["upsampling_ratio"] not in UPSAMPLING_RATIOS or p["hidden_units"] not in
                HIDDEN_UNITS or not _inside(p["learning_rate"], LEARNING_RATE_RANGE)):
            return {}
        if p["loss"] == "focal":
            p.update(focal_gamma=settings.focal_gamma, focal_alpha=settings.focal_alpha)
        if p["upsampling_ratio"] > 0:
            p["upsampling_mode"] = settings.upsampling_mode
        if name == "dense":
            p["mixup"] = settings.mixup
        return p
    p = {k: float(head[k]) for k in ("C", "pos_weight")}
    return p if _inside(p["C"], C_RANGE) and _inside(p["pos_weight"], POS_WEIGHT_RANGE) else {}


def _inside(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def describe(params: dict) -> str:
    """``C=0.1, loss=focal``: a trial's settings in one line (console and report)."""
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in params.items())
