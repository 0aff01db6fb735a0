"""``--autotune``: the search over a head's settings (optuna), its trials in the report, and
its refusals; on generated blobs, and end to end on devbirds (skipped when absent)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
from test_train import blobs

from edgebird.training.autotune import SPACES, autotune
from edgebird.training.report import _autotune_lines
from edgebird.training.train import TrainSettings, train_classifier

optuna = pytest.importorskip("optuna")

QUIET = dict(holdout_species=0, synthetic_negatives=0)


def hard_blobs(seed=0):
    """Overlapping blobs: settings matter (a strong penalty or a weak one score differently)."""
    f = blobs(n_per=24, classes=3, dim=24, seed=seed, groups_per=6)
    rng = np.random.default_rng(seed)
    return replace(f, x=(f.x + 1.5 * rng.standard_normal(f.x.shape)).astype(np.float32))


def test_autotune_scores_trials_starts_from_the_defaults_and_trains_the_best():
    feats = hard_blobs()
    lines = []
    s = TrainSettings(head="logreg", autotune=6, folds=3, **QUIET)
    result = train_classifier(feats, s, echo=lines.append)
    trials = result.autotune
    assert [t["trial"] for t in trials] == [1, 2, 3, 4, 5, 6]
    assert trials[0]["params"] == {"C": 0.1, "pos_weight": 1.0}  # the settings as given
    done = [t for t in trials if t["auprc"] is not None]
    best = max(done, key=lambda t: t["auprc"])
    assert 0.3 < best["auprc"] <= 1.0
    assert dict(result.settings.head_params) == pytest.approx(best["params"])
    assert result.final.head.C == pytest.approx(best["params"]["C"])  # the final model too
    assert result.settings.autotune == 6
    assert any("--autotune (6 trials)" in n and "optimistic" in n for n in result.notes)
    assert sum(line.startswith("autotune trial") for line in lines) == 6
    table = "\n".join(_autotune_lines(trials))
    assert "## Autotune" in table and f"| {best['trial']} **(chosen)** |" in table


def test_the_search_is_repeatable_with_the_seed():
    feats = hard_blobs(1)
    s = TrainSettings(head="anchored", autotune=4, folds=2, **QUIET)
    a = autotune(feats, s, echo=lambda m: None)
    b = autotune(feats, s, echo=lambda m: None)
    assert a[0] == b[0] and [t["params"] for t in a[1]] == [t["params"] for t in b[1]]


@pytest.mark.parametrize("head", sorted(SPACES))
def test_every_sampled_setting_is_one_train_accepts(head):
    """Whatever TPE proposes builds a valid TrainSettings and head (no trial lost to a
    combination the head refuses; the dense head's focal and upsampling keys included)."""
    base = TrainSettings(head=head, **QUIET)
    seen = set()

    def objective(trial):
        s = replace(base, **SPACES[head](trial))
        s.make_head()
        seen.update(trial.params)
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=40)
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    if head.startswith("dense"):
        assert {"hidden_units", "learning_rate", "focal_gamma", "upsampling_mode"} <= seen
        assert ("mixup" in seen) == (head == "dense")
    else:
        assert seen == {"C", "pos_weight"}


def test_refusals_say_what_to_do(monkeypatch):
    feats = hard_blobs()
    with pytest.raises(ValueError, match="has no parameter hidden"):
        TrainSettings(head="logreg", head_params=(("hidden", 3),))
    one = feats.subset(np.flatnonzero((feats.groups != "c2-r1") | (feats.y[:, 2] == 0)))
    lonely = one.subset(np.flatnonzero(~np.isin(one.groups, [f"c2-r{i}" for i in range(2, 6)])))
    with pytest.raises(ValueError, match="two recordings of every class"):
        autotune(lonely, TrainSettings(autotune=3, **QUIET), echo=lambda m: None)
    with pytest.raises(ValueError, match="trials must be >= 0"):
        TrainSettings(autotune=-1)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ValueError, match=r"pip install 'edgebird\[tune\]'"):
        autotune(feats, TrainSettings(autotune=3, **QUIET), echo=lambda m: None)


def test_cli_option(capsys):
    from edgebird.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--autotune [TRIALS]" in capsys.readouterr().out


@pytest.mark.integration
def test_autotune_on_devbirds(devbirds, tmp_path):
    """The CLI on real recordings: trials in the console, REPORT.md and metrics.json; the
    tuned model still meets the quality bar of the default one."""
    from edgebird.cli import main

    out = tmp_path / "tuned"
    code = main(["train", str(devbirds), "-o", str(out), "--autotune", "4",
                 "--holdout-species", "2", "--store", str(tmp_path / "store")])
    assert code in (0, None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["autotune_trials"]) == 4
    assert metrics["settings"]["autotune"] == 4 and metrics["settings"]["head_params"]
    mean = next(r for r in metrics["metrics"] if r["model"] == "head" and r["split"] == "mean")
    assert mean["f1@thr"] >= 0.95
    report = (out / "REPORT.md").read_text()
    assert "## Autotune" in report and "**(chosen)**" in report


def test_ctrl_c_in_a_trial_stops_the_search_without_a_traceback(monkeypatch, caplog):
    """The interrupt reaches the CLI (which says "interrupted" and exits 130); optuna's
    warning with the traceback of the interrupted trial is not logged (it reached the
    terminal before). Propagation on, so the test's log capture sees what optuna emits."""
    import edgebird.training.autotune as at

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(at, "cv_score", interrupted)
    optuna.logging.enable_propagation()
    try:
        with caplog.at_level("DEBUG"), pytest.raises(KeyboardInterrupt):
            autotune(hard_blobs(), TrainSettings(head="logreg", autotune=3, **QUIET),
                     echo=lambda m: None)
    finally:
        optuna.logging.disable_propagation()
    shown = [r for r in caplog.records if r.name.startswith("optuna")
             and r.levelno >= optuna.logging.WARNING]
    assert not shown, [r.getMessage() for r in shown]
