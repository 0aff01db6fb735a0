"""Benchmark ``edgebird train``: head training time and memory, the cache hit of the embedding
step, and that the light commands never import TensorFlow.

What is measured, and why:

(1) TRAINING TIME PER FOLD on 1,000 cached embeddings x 20 classes (target: < 30 s per fold on
    2 cores, not counting the TensorFlow import). A ``Features`` set of 1,000 rows x 1,024
    dims, 20 classes x 10 recordings (groups) x 5 windows, is generated from a seeded
    latent-factor model whose rows look like BirdNET embeddings (non-negative, about a fifth
    exactly zero; mean, spread and class separation close to real devbirds embeddings, which
    are compared when /work/shared/data/devbirds exists). Training needs no audio, so synthetic
    embeddings are as good as real ones for timing (devbirds has only 100 clips x 10 classes).
    ``import tensorflow`` (+ ``keras``) is timed on its own in fresh processes. Run A, in a
    fresh process (so its peak RSS is the training's own): ``train_classifier(feats,
    TrainSettings(folds=5, holdout_species=0), negatives=<64 background rows, all-zero
    labels>, noise_eval=None)``: total time, per fold (= cross-validation time / folds, and
    each fold separately), the final-model fit, the number of Keras fits (each fold runs
    ``inner_fit``: an inner 5-fold plus one refit, i.e. 6 fits) and how a fold's time splits
    between Keras and the logistic baseline. ``DenseHead.fit`` and ``logistic_baseline`` are
    wrapped (not changed) to time and count them. Run B, in another fresh process: the same
    with the default ``holdout_species=10``, to show what the held-out-species step costs.

(2) CACHE HIT of the embedding step: the feature step of ``edgebird train`` (``build_features``
    with train's default audio settings, crop mode "smart", default engine) on devbirds (100
    mp3 clips; generated audio from ``edgebird.synth.write_dataset`` when it is absent) into a
    fresh store, then again on the same store, each in a fresh process. Also timed: the 64 +
    100 synthetic noise windows ``train_from_data`` embeds (``synthetic_negatives``, called as
    train calls it: with ``cache=store`` where edgebird supports it).

(3) NO TENSORFLOW in the light commands: in fresh processes, after ``import edgebird.cli;
    edgebird.cli.build_parser()``, after ``edgebird.cli.main(["--help"])``, after
    ``edgebird.training.model_export.inspect_model(head)`` and
    after ``edgebird.cli.main(["inspect", head])``
    on a head-only .tflite (``dense_head_model`` with random W [1024, 3]), ``tensorflow`` and
    ``keras`` must not be in ``sys.modules``. Wall time of ``edgebird --help`` and ``edgebird
    inspect`` (the console script) is reported next to ``python -c pass``.

Every measurement records the share of the machine other processes used meanwhile (*other
CPU*, ``harness.OtherLoad``); short measurements disturbed by more than 5 % are repeated,
training runs (minutes) are flagged instead. MB is 10^6 bytes. Results are printed as markdown
and written between the ``bench_train`` markers of ``docs/BENCHMARKS.md``.

Run: ``python bench/bench_train.py`` (full, about 3-4 minutes on an idle 2-core machine) or
``--quick`` (under a minute: run A's first fold only, no final fit, no run B).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness as h
import numpy as np
from harness import DEVBIRDS, MB

NAME = "bench_train"
DEFAULT_OUT = h.OUT / "train"

TARGET_FOLD_SECONDS = 30.0
N_ROWS, N_DIMS, N_CLASSES, N_GROUPS = 1000, 1024, 20, 10
N_NEGATIVES = 64
FOLDS = 5
HOLDOUT_DEFAULT = 10
#: Modules whose presence after a light command is reported (TensorFlow and Keras must be absent).
WATCHED = ("tensorflow", "keras", "sklearn", "scipy", "ai_edge_litert", "matplotlib", "numpy")
RESULT = "RESULT "
CHILD_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}  # what edgebird.heads.dense sets anyway


# -- synthetic embeddings ----------------------------------------------------------------------
#: Latent-factor model: row = max(0, mean + (class + recording + window) @ A + iso noise), with
#: a 32-dim latent space. Chosen so that mean, spread, zero fraction and class separation are
#: close to BirdNET embeddings of real clips (devbirds) and a logistic regression is ~90 %
#: right on held-out recordings: a realistic task, neither trivial nor hopeless.
LATENT, MEAN, MEAN_SD, CLASS_SD, GROUP_SD, WINDOW_SD, ISO_SD = 32, 0.40, 0.2, 0.3, 0.3, 0.3, 0.2


def synthetic_embeddings(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x [1000, 1024] float32 >= 0, one-hot y [1000, 20], group ids, and 64 background rows
    (no class component) for the negatives."""
    rng = np.random.default_rng(seed)
    per_group = N_ROWS // (N_CLASSES * N_GROUPS)
    mean = np.clip(rng.normal(MEAN, MEAN_SD, N_DIMS), 0, None)
    a = rng.normal(0, 1 / np.sqrt(LATENT), (LATENT, N_DIMS))
    z = (rng.normal(0, CLASS_SD, (N_CLASSES, 1, 1, LATENT))
         + rng.normal(0, GROUP_SD, (N_CLASSES, N_GROUPS, 1, LATENT))
         + rng.normal(0, WINDOW_SD, (N_CLASSES, N_GROUPS, per_group, LATENT)))
    x = np.maximum(0, mean + z @ a + rng.normal(0, ISO_SD, (*z.shape[:3], N_DIMS)))
    x = x.reshape(N_ROWS, N_DIMS).astype(np.float32)
    y = np.repeat(np.eye(N_CLASSES, dtype=np.float32), N_GROUPS * per_group, axis=0)
    groups = np.repeat([f"class{c:02d}_rec{g:02d}" for c in range(N_CLASSES)
                        for g in range(N_GROUPS)], per_group)
    zb = rng.normal(0, np.hypot(GROUP_SD, WINDOW_SD), (N_NEGATIVES, LATENT))
    neg = np.maximum(0, mean + zb @ a + rng.normal(0, ISO_SD, (N_NEGATIVES, N_DIMS)))
    return x, y, groups, neg.astype(np.float32)


def synthetic_features(seed: int = 0) -> tuple[Any, Any]:
    """The benchmark's ``Features`` (1,000 x 1,024, 20 classes) and the 64 negatives."""
    from edgebird.training.features import Features

    x, y, groups, neg = synthetic_embeddings(seed)
    classes = [f"Species_{c:02d}" for c in range(N_CLASSES)]
    feats = Features(x, y, groups, np.array([f"{g}.wav" for g in groups]),
                     np.tile(np.arange(N_ROWS // (N_CLASSES * N_GROUPS)) * 3.0,
                             N_CLASSES * N_GROUPS),
                     np.full(N_ROWS, "positive"), classes)
    negatives = Features(neg, np.zeros((N_NEGATIVES, N_CLASSES), dtype=np.float32),
                         np.array([f"synthetic:0:{i}" for i in range(N_NEGATIVES)]),
                         np.array(["<synthetic noise>"] * N_NEGATIVES), np.zeros(N_NEGATIVES),
                         np.full(N_NEGATIVES, "synthetic"), classes)
    return feats, negatives


def embedding_stats(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Mean, SD, share of exact zeros, mean distance of a row to its class centroid and of a
    class centroid to the overall mean (single-label rows only)."""
    labels = y.argmax(axis=1)
    keep = (y > 0.5).sum(axis=1) == 1
    x, labels = x[keep], labels[keep]
    present = np.unique(labels)
    centres = np.stack([x[labels == c].mean(axis=0) for c in present])
    within = np.mean([np.linalg.norm(x[labels == c] - centres[i], axis=1).mean()
                      for i, c in enumerate(present)])
    between = np.linalg.norm(centres - x.mean(axis=0), axis=1).mean()
    return {"rows": float(len(x)), "classes": float(len(present)), "mean": float(x.mean()),
            "sd": float(x.std()), "zeros": float((x == 0).mean()), "within": float(within),
            "between": float(between)}


# -- child processes ---------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return h.peak_rss_bytes() / MB


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


class StopCV(Exception):
    """Raised from ``echo`` to end cross-validation early (``--quick``)."""


def _instrument(calls: list[dict], baseline: list[float], state: dict) -> None:
    """Wrap the dense head's ``fit`` (a class attribute, so every clone sees the wrapper) and
    edgebird.training.train's ``logistic_baseline`` (a module global) to time and count them.
    No edgebird code changes; the wrappers cost microseconds."""
    import edgebird.training.train as tr
    from edgebird.heads.dense import DenseHead

    fit_head, logistic = DenseHead.fit, tr.logistic_baseline

    def timed_fit(head: Any, x: Any, y: Any, sample_weight: Any = None,
                  validation: Any = None) -> Any:
        phase = "final" if head.keep_model else state["phase"]
        t0 = time.perf_counter()
        fit_head(head, x, y, sample_weight, validation)
        calls.append({"phase": phase, "fold": state["fold"],
                      "seconds": time.perf_counter() - t0, "rows": len(x),
                      "epochs": len(head.history_.get("loss", [])), "best": head.best_epoch_,
                      "validated": validation is not None})  # inner fits: early stopping
        if phase == "final":
            state["phase"] = "holdout"
        return head

    def timed_baseline(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = logistic(*args, **kwargs)
        baseline.append(time.perf_counter() - t0)
        return out

    DenseHead.fit, tr.logistic_baseline = timed_fit, timed_baseline


def worker_train(params: dict) -> dict:
    """Fresh process: import TensorFlow (timed, excluded), then ``train_classifier``."""
    t0 = time.perf_counter()
    import keras  # noqa: F401 - what edgebird.heads.dense.keras_module() imports
    import tensorflow  # noqa: F401

    tf_seconds = time.perf_counter() - t0
    import edgebird.training.train as tr

    feats, negatives = synthetic_features(params["seed"])
    rss_ready = _rss_mb()
    calls: list[dict] = []
    baseline: list[float] = []
    state: dict[str, Any] = {"phase": "cv", "fold": 1}
    _instrument(calls, baseline, state)
    fold_ends: list[float] = []
    fold_lines: list[str] = []
    stop_after = params.get("stop_after") or 0

    start = time.perf_counter()

    def echo(msg: str) -> None:
        now = time.perf_counter() - start
        print(f"{now:7.1f} s  {msg}", flush=True)
        if msg.startswith("fold "):
            fold_ends.append(now)
            fold_lines.append(msg)
            state["fold"] += 1
            if stop_after and len(fold_ends) >= stop_after:
                raise StopCV

    s = tr.TrainSettings(folds=params["folds"], holdout_species=params["holdout"],
                         seed=params["seed"])
    result = None
    with contextlib.suppress(StopCV):
        result = tr.train_classifier(feats, s, negatives=negatives, noise_eval=None, echo=echo)
    total = time.perf_counter() - start
    out: dict[str, Any] = {
        "tf_import_s": tf_seconds, "rss_ready_mb": rss_ready, "peak_rss_mb": _peak_rss_mb(),
        "total_s": total, "fold_ends": fold_ends, "calls": calls, "baseline_s": baseline,
        "folds_planned": params["folds"], "fold_f1": [], "fold_base_f1": [],
    }
    for line in fold_lines:
        m = re.search(r"macro F1 ([\d.]+).*baseline F1@0\.5 ([\d.]+)", line)
        if m:
            out["fold_f1"].append(float(m.group(1)))
            out["fold_base_f1"].append(float(m.group(2)))
    if result is not None:
        out["macro_f1"] = result.overall[0]["f1@thr"]
        out["baseline_f1"] = result.baseline_overall[0]["f1@0.5"]
        out["epochs"] = int(np.median([f.best_epoch for f in result.folds]))
        out["thresholds"] = [float(t) for t in result.thresholds]
        if result.holdout:
            out["holdout_fp"] = float(np.mean([r["fp_rate@thr"] for r in result.holdout]))
    return out


def worker_features(params: dict) -> dict:
    """Fresh process: the feature step of ``train_from_data`` (scan, BirdNET, build_features),
    then the synthetic noise windows it embeds on every run."""
    t0 = time.perf_counter()
    import edgebird.training.features as feat
    from edgebird.audio import AudioSettings
    from edgebird.backbones.birdnet.model import BirdNET
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.training.classifier import load_training_set

    summaries = []
    embed_files = feat.embed_files

    def counted(*args: Any, **kwargs: Any) -> Any:
        summary = embed_files(*args, **kwargs)
        summaries.append(summary)
        return summary

    feat.embed_files = counted
    import_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ts = load_training_set(params["data"])
    engine = EngineSettings()
    model = BirdNET(num_threads=engine.threads, batch_size=engine.batch_size)
    feats = feat.build_features(ts, params["store"], AudioSettings(crop_mode="smart"), model,
                                engine, progress=False)
    build_s = time.perf_counter() - t1
    # As train_from_data calls it (default seed 0): cached in the store when edgebird can.
    noise_cache = "cache" in inspect.signature(feat.synthetic_negatives).parameters
    extra = {"cache": params["store"]} if noise_cache else {}
    t2 = time.perf_counter()
    feat.synthetic_negatives(model, ts.classes, N_NEGATIVES, 0, **extra)
    feat.synthetic_negatives(model, ts.classes, 100, 1000, **extra)
    noise_s = time.perf_counter() - t2
    s = summaries[0]
    return {"import_s": import_s, "build_s": build_s, "noise_s": noise_s,
            "noise_cache": noise_cache,
            "files": s.files, "computed": s.computed, "cached": s.cached,
            "failed": len(s.failed), "windows": len(feats), "classes": len(ts.classes),
            "audio_s": s.audio_seconds,
            "stats": embedding_stats(feats.x, feats.y), "peak_rss_mb": _peak_rss_mb()}


WORKERS: dict[str, Callable[[dict], dict]] = {
    "train": worker_train, "features": worker_features}


@dataclass
class Child:
    result: dict
    wall: float
    other_load: float


def run_child(kind: str, params: dict, echo_prefix: str | None = "    | ") -> Child:
    """Run a worker of this script in a fresh interpreter; stream its stdout (progress) and
    return its RESULT line. stderr (TensorFlow's log) goes to a file, shown on failure."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind,
           "--params", json.dumps(params)]
    result = None
    with tempfile.TemporaryFile("w+") as err, h.OtherLoad() as load:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=CHILD_ENV)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(RESULT):
                result = json.loads(line[len(RESULT):])
            elif echo_prefix is not None:
                print(echo_prefix + line.rstrip(), flush=True)
        proc.wait()
        wall = time.perf_counter() - t0
        if proc.returncode != 0 or result is None:
            err.seek(0)
            raise RuntimeError(f"worker {kind} failed (exit {proc.returncode}):\n"
                               + err.read()[-4000:])
    return Child(result, wall, load.share)


def run_command(cmd: list[str]) -> h.ProcessRun:
    """One command, timed (stderr only shown on failure)."""
    return h.run_process(cmd, sample_memory=False, env=CHILD_ENV, merge_stderr=False)


def repeated(cmd: list[str], runs: int, retries: int) -> tuple[list[float], list[float], str]:
    """``runs`` timings of a short command; a run disturbed by other processes is repeated."""
    done = [h.steady(lambda: run_command(cmd), retries) for _ in range(runs)]
    return [r.wall for r in done], [r.other_load for r in done], done[-1].stdout if done else ""


# -- (1) import + training ---------------------------------------------------------------------
TF_IMPORT_CODE = """
import json, resource, time
t0 = time.perf_counter()
import tensorflow
t1 = time.perf_counter()
import keras
t2 = time.perf_counter()
print(json.dumps({"tensorflow_s": t1 - t0, "keras_s": t2 - t1,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@dataclass
class TfImport:
    walls: list[float]
    tf_seconds: list[float]
    keras_seconds: list[float]
    peak_rss_mb: float
    loads: list[float]


def measure_tf_import(runs: int, retries: int) -> TfImport:
    walls, tfs, ks, loads, rss = [], [], [], [], 0.0
    for _ in range(runs):
        run = h.steady(lambda: run_command([sys.executable, "-c", TF_IMPORT_CODE]), retries)
        r = json.loads(run.stdout.strip().splitlines()[-1])
        walls.append(run.wall)
        tfs.append(r["tensorflow_s"])
        ks.append(r["keras_s"])
        loads.append(run.other_load)
        rss = max(rss, r["peak_rss_kib"] * 1024 / MB)
    return TfImport(walls, tfs, ks, rss, loads)


# -- (3) light commands --------------------------------------------------------------------------
CHECK_SUFFIX = f"""
import json, sys
watched = {WATCHED!r}
print(json.dumps({{"modules": {{m: m in sys.modules for m in watched}},
                  "count": len(sys.modules)}}))
"""

CHECKS = {
    "`import edgebird.cli; edgebird.cli.build_parser()`":
        "import edgebird.cli\nedgebird.cli.build_parser()\n",
    "`edgebird.cli.main(['--help'])`":
        "import contextlib, io, edgebird.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        edgebird.cli.main(['--help'])\n"
        "    except SystemExit:\n        pass\n",
    "`edgebird.training.model_export.inspect_model(head)`":
        "import edgebird.training.model_export\n"
        "edgebird.training.model_export.inspect_model({head!r})\n",
    "`edgebird.cli.main(['inspect', head])`":
        "import contextlib, io, edgebird.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    status = edgebird.cli.main(['inspect', {head!r}])\n"
        "assert status == 0, status\n",
}


def write_head_model(folder: Path) -> Path:
    """A head-only .tflite (random W [1024, 3], b [3]) with its labels file."""
    from edgebird.backbones.birdnet.graph import dense_head_model

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (N_DIMS, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 3).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "BenchHead.tflite"
    path.write_bytes(dense_head_model([(w, b, False)]))
    (folder / "BenchHead_Labels.txt").write_text("Alpha\nBeta\nGamma\n", encoding="utf-8")
    return path


def check_imports(head: Path) -> dict[str, dict]:
    out = {}
    for name, code in CHECKS.items():
        run = run_command([sys.executable, "-c", code.format(head=str(head)) + CHECK_SUFFIX])
        out[name] = json.loads(run.stdout.strip().splitlines()[-1])
    return out


@dataclass
class CliTimes:
    rows: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.rows[name][0])


def measure_cli(head: Path, runs: int, retries: int) -> CliTimes:
    edgebird = h.edgebird_command()
    times = CliTimes()
    for name, cmd in (("`python -c pass` (interpreter start-up)", [sys.executable, "-c", "pass"]),
                      ("`edgebird --help`", [*edgebird, "--help"]),
                      ("`edgebird inspect BenchHead.tflite`", [*edgebird, "inspect", str(head)])):
        walls, loads, _ = repeated(cmd, runs, retries)
        times.rows[name] = (walls, loads)
    return times


# -- (2) cache hit -----------------------------------------------------------------------------
def feature_data(out: Path) -> tuple[Path, str]:
    if (DEVBIRDS.is_dir() and sum(1 for _ in DEVBIRDS.rglob("*.mp3")) >= 2):
        return DEVBIRDS, f"devbirds (real mp3 clips, {DEVBIRDS})"
    from edgebird.synth import write_dataset

    root = out / "synth_dataset"
    if not root.is_dir():
        write_dataset(root, clips_per_class=10, seconds=6.0)
    return root, ("generated audio (`edgebird.synth.write_dataset`, 10 x 6-s clips per class; "
                  "devbirds was not found)")


def measure_cache(data: Path, out: Path, retries: int) -> tuple[Child, Child]:
    store = out / "store"

    def miss_then_hit() -> tuple[Child, Child]:
        shutil.rmtree(store, ignore_errors=True)
        return (run_child("features", {"data": str(data), "store": str(store)}, None),
                run_child("features", {"data": str(data), "store": str(store)}, None))

    first, second = h.steady(miss_then_hit, retries, "embedding step",
                             load=lambda pair: max(c.other_load for c in pair))
    shutil.rmtree(store, ignore_errors=True)
    if first.result["computed"] == 0 or second.result["computed"] != 0:
        raise RuntimeError(f"expected a miss then a hit: {first.result}, {second.result}")
    return first, second


# -- report ------------------------------------------------------------------------------------
def _fits(calls: list[dict], phase: str) -> list[dict]:
    return [c for c in calls if c["phase"] == phase]


def render(info: dict[str, str], quick: bool, tf: TfImport, train: Child,
           holdout: Child | None, cache: tuple[Child, Child] | None,
           data_label: str, synth_stats: dict[str, float], checks: dict[str, dict],
           cli: CliTimes) -> str:
    r = train.result
    ends = r["fold_ends"]
    folds_done = len(ends)
    cv_s = ends[-1] if ends else float("nan")
    per_fold = cv_s / folds_done
    cv_calls = _fits(r["calls"], "cv")
    final_calls = _fits(r["calls"], "final")
    lines = [
        "## `edgebird train`: head training time, cache hit, light commands",
        "",
        h.generated_by(info, "bench_train.py", quick,
                       {"TensorFlow": info["tensorflow"], "Keras": info["keras"],
                        "scikit-learn": info["scikit-learn"]}),
        "",
        "To rerun (from the repository root): `python bench/bench_train.py` (full, about "
        "3-4 min on 2 cores) or `python bench/bench_train.py --quick` (first fold only, no "
        "run B, under a minute).",
        "",
        "### Training time per fold (1,000 cached embeddings x 20 classes)",
        "",
        f"Data: **synthetic** embeddings, {N_ROWS} rows x {N_DIMS} dims, {N_CLASSES} classes x "
        f"{N_GROUPS} recordings x {N_ROWS // (N_CLASSES * N_GROUPS)} windows, from a seeded "
        "latent-factor model (non-negative like BirdNET embeddings; see the comparison with "
        f"real embeddings below), plus {N_NEGATIVES} background rows with all-zero labels as "
        f"`negatives`; `noise_eval=None`. `train_classifier(feats, TrainSettings(folds={FOLDS}, "
        "holdout_species=0), ...)` in a fresh process after `import tensorflow, keras` (not "
        "counted). Each fold runs `inner_fit`: an inner grouped 5-fold (early stopping on each "
        "inner validation part, up to 100 epochs, patience 10) plus one refit on the whole "
        "training part = 6 Keras fits, and the logistic-regression baseline (20 one-vs-rest "
        "`LogisticRegression` fits). *Other CPU*: share of the machine other processes used "
        "during the measurement.",
        "",
        "| measurement | wall s | Keras fits | epochs per fit (median) | peak RSS MB "
        "| other CPU % |",
        "|---|--:|--:|--:|--:|--:|",
        f"| `import tensorflow` + `import keras` (fresh process, median of {len(tf.walls)}) | "
        f"{statistics.median(tf.tf_seconds) + statistics.median(tf.keras_seconds):.2f} | - | - | "
        f"{tf.peak_rss_mb:.0f} | {100 * max(tf.loads):.0f} |",
    ]
    epochs_cv = statistics.median(c["epochs"] for c in cv_calls) if cv_calls else 0
    run_a = f"holdout_species=0{'; --quick: first fold only' if quick else ''}"
    lines += [
        f"| **A** ({run_a}): cross-validation, {folds_done} of {FOLDS} folds | {cv_s:.1f} | "
        f"{len(cv_calls)} | {epochs_cv:.0f} | {r['peak_rss_mb']:.0f} | "
        f"{100 * train.other_load:.0f} |",
        f"| **A: per fold** (CV time / {folds_done}) | **{per_fold:.1f}** | "
        f"{len(cv_calls) / max(folds_done, 1):.0f} | {epochs_cv:.0f} | | |",
    ]
    if final_calls:
        f = final_calls[0]
        lines += [f"| A: final model (all {f['rows']} rows, fixed epochs) | "
                  f"{f['seconds']:.1f} | 1 | {f['epochs']} | | |",
                  f"| A: whole `train_classifier` | {r['total_s']:.1f} | {len(r['calls'])} | | "
                  f"{r['peak_rss_mb']:.0f} | {100 * train.other_load:.0f} |"]
    holdout_s = float("nan")
    if holdout is not None:
        hr = holdout.result
        h_cv = _fits(hr["calls"], "cv")
        h_final = sum(c["seconds"] for c in _fits(hr["calls"], "final"))
        h_fits = _fits(hr["calls"], "holdout")
        holdout_s = hr["total_s"] - hr["fold_ends"][-1] - h_final
        lines += [
            f"| **B** (holdout_species={HOLDOUT_DEFAULT}, the default): whole "
            f"`train_classifier` | {hr['total_s']:.1f} | {len(hr['calls'])} | | "
            f"{hr['peak_rss_mb']:.0f} | {100 * holdout.other_load:.0f} |",
            f"| B: cross-validation, per fold | {hr['fold_ends'][-1] / len(hr['fold_ends']):.1f} | "
            f"{len(h_cv) / len(hr['fold_ends']):.0f} | "
            f"{statistics.median(c['epochs'] for c in h_cv):.0f} | | |",
            f"| **B: held-out species** ({len(h_fits)} classes, after the final model): the "
            f"cost of holdout_species={HOLDOUT_DEFAULT} | **{holdout_s:.1f}** | {len(h_fits)} | "
            f"{statistics.median(c['epochs'] for c in h_fits):.0f} | | |",
        ]
    lines += ["", "Each fold (wall s = time between the fold's end and the previous one's; "
              "Keras = its 6 fits; baseline = the logistic regression; rest = splitting, "
              "predictions, metrics):", "",
              "| fold | wall s | Keras s | Keras fits | epochs per fit | baseline s | rest s "
              "| macro F1 (head) | F1@0.5 (baseline) |",
              "|--:|--:|--:|--:|---|--:|--:|--:|--:|"]
    prev = 0.0
    for i, end in enumerate(ends):
        fc = [c for c in cv_calls if c["fold"] == i + 1]
        keras_s = sum(c["seconds"] for c in fc)
        base = r["baseline_s"][i] if i < len(r["baseline_s"]) else 0.0
        f1 = r["fold_f1"][i] if i < len(r["fold_f1"]) else float("nan")
        bf1 = r["fold_base_f1"][i] if i < len(r["fold_base_f1"]) else float("nan")
        lines.append(f"| {i + 1} | {end - prev:.1f} | {keras_s:.1f} | {len(fc)} | "
                     f"{', '.join(str(c['epochs']) for c in fc)} | {base:.1f} | "
                     f"{end - prev - keras_s - base:.1f} | {f1:.3f} | {bf1:.3f} |")
        prev = end
    keras_total = sum(c["seconds"] for c in cv_calls)
    base_total = sum(r["baseline_s"][:folds_done])
    steps = [c["epochs"] * int(np.ceil(c["rows"] / 32)) for c in cv_calls]
    lines += [
        "",
        f"Of the cross-validation time, Keras fits take {keras_total:.1f} s "
        f"({100 * keras_total / cv_s:.0f} %; {1000 * keras_total / max(sum(steps), 1):.1f} ms "
        f"per optimizer step of batch 32, validation included) and the logistic baseline "
        f"{base_total:.1f} s ({100 * base_total / cv_s:.0f} %). The process's RSS was "
        f"{r['rss_ready_mb']:.0f} MB with TensorFlow imported and the data built, "
        f"{r['peak_rss_mb']:.0f} MB at its peak.",
    ]
    validated = [c for c in cv_calls if c["validated"]]
    if validated:
        run = sum(c["epochs"] for c in validated)
        after_best = sum(c["epochs"] - c["best"] for c in validated)
        lines.append(
            f"The {len(validated)} early-stopped (inner) fits reach their best validation loss "
            f"at a median epoch of {statistics.median(c['best'] for c in validated):.0f} and "
            f"stop at {statistics.median(c['epochs'] for c in validated):.0f}: "
            f"{100 * after_best / max(run, 1):.0f} % of their epochs come after the best one "
            f"(patience 10).")
    if "macro_f1" in r:
        lines.append(f"Cross-validated macro F1 on this synthetic set: head "
                     f"{r['macro_f1']:.3f}, logistic baseline {r['baseline_f1']:.3f} "
                     f"(not a quality benchmark: it shows the task is not trivial).")
    if holdout is not None:
        hr = holdout.result
        lines.append(
            f"Run B repeats run A with holdout_species={HOLDOUT_DEFAULT} in another fresh "
            f"process; its held-out-species step (one fit per held-out class on the other "
            f"classes, for the final model's {r.get('epochs')} epochs) took {holdout_s:.1f} s, "
            f"and the two whole runs differ by {hr['total_s'] - r['total_s']:+.1f} s (that "
            f"difference also holds the run-to-run noise of the cross-validation).")

    if cache is not None:
        a, b = cache[0].result, cache[1].result
        lines += [
            "",
            "### Cache hit of the embedding step",
            "",
            f"Data: {data_label}; {a['files']} files, {a['classes']} classes, "
            f"{cache[0].result.get('audio_s', 0.0) / 60:.0f} min of audio. The feature step "
            "of `edgebird train` (`load_training_set` + `build_features` with train's default "
            "audio settings, crop mode *smart*, and the default engine: one worker per core) "
            f"into a fresh store, then again on the same store, each in a fresh process. "
            f"*Noise windows*: the {N_NEGATIVES} + 100 synthetic noise windows "
            "`train_from_data` embeds in process (negatives + noise_eval; "
            + ("`synthetic_negatives(..., cache=store)`, cached in the store as train does"
               if a.get("noise_cache") else "not cached: embedded again on every run")
            + "). *Process* is the whole worker process's wall time (interpreter, imports, "
            "both steps).",
            "",
            "| run | files embedded / from the store | windows | `build_features` s "
            "| noise windows s | process s | peak RSS MB | other CPU % |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, c in (("first (fresh store)", cache[0]), ("second (cache hit)", cache[1])):
            x = c.result
            lines.append(
                f"| {name} | {x['computed']} / {x['cached']} | {x['windows']} | "
                f"{x['build_s']:.2f} | {x['noise_s']:.2f} | {c.wall:.2f} | "
                f"{x['peak_rss_mb']:.0f} | {100 * c.other_load:.0f} |")
        lines += [
            "",
            f"**Speed-up of `build_features` on the second run: "
            f"{a['build_s'] / b['build_s']:.0f}x** ({a['build_s']:.2f} s -> "
            f"{b['build_s']:.2f} s). With the noise windows, the embedding work of a "
            f"second `edgebird train` goes from {a['build_s'] + a['noise_s']:.2f} s to "
            f"{b['build_s'] + b['noise_s']:.2f} s "
            f"({(a['build_s'] + a['noise_s']) / (b['build_s'] + b['noise_s']):.0f}x).",
            "",
            "Synthetic training embeddings vs BirdNET embeddings of the real clips "
            "(distances are Euclidean, over 1,024 dims; *within*: row to its class centroid; "
            "*between*: class centroid to the overall mean, which is inflated when a class "
            "has few rows):",
            "",
            "| embeddings | rows | classes | mean | SD | exact zeros | within | between |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for name, st in (("synthetic (training benchmark)", synth_stats),
                         (data_label.split(" (")[0], a["stats"])):
            lines.append(f"| {name} | {st['rows']:.0f} | {st['classes']:.0f} | "
                         f"{st['mean']:.3f} | {st['sd']:.3f} | {100 * st['zeros']:.0f} % | "
                         f"{st['within']:.1f} | {st['between']:.1f} |")

    lines += [
        "",
        "### Light commands do not import TensorFlow",
        "",
        "Each check in a fresh `python -c` process on a head-only model (`dense_head_model` "
        "with random W [1024, 3], b [3], and a labels file); the modules listed were in "
        "`sys.modules` afterwards.",
        "",
        "| after | tensorflow | keras | other heavy modules loaded | modules |",
        "|---|---|---|---|--:|",
    ]
    for name, c in checks.items():
        mods = c["modules"]
        others = [m for m in WATCHED if m not in ("tensorflow", "keras") and mods[m]]
        lines.append(f"| {name} | {'**imported**' if mods['tensorflow'] else 'no'} | "
                     f"{'**imported**' if mods['keras'] else 'no'} | "
                     f"{', '.join(others) or 'none'} | {c['count']} |")
    n_cli = len(next(iter(cli.rows.values()))[0])
    lines += ["", f"Wall time of the console script (median of {n_cli} runs):", "",
              "| command | wall s (median) | runs | other CPU % (max) |",
              "|---|--:|---|--:|"]
    for name, (walls, loads) in cli.rows.items():
        lines.append(f"| {name} | {statistics.median(walls):.3f} | {h.fmt_list(walls, 3)} | "
                     f"{100 * max(loads):.0f} |")

    lines += ["", "### Targets", ""]
    lines += h.caution([train.other_load, *([holdout.other_load] if holdout else []),
                        *tf.loads], "the TensorFlow/training measurements",
                       "those times are too high")
    lines.append(f"- Training < {TARGET_FOLD_SECONDS:.0f} s per fold (1,000 x 20, "
                 f"{info['cores']} cores, TensorFlow import excluded): "
                 f"{h.verdict(per_fold < TARGET_FOLD_SECONDS)} ({per_fold:.1f} s per fold, "
                 f"slowest fold {max(np.diff([0.0, *ends])):.1f} s"
                 f"{'; first fold only (--quick)' if quick else ''}).")
    tf_free = {name: not (c["modules"]["tensorflow"] or c["modules"]["keras"])
               for name, c in checks.items()}
    help_ok = all(ok for name, ok in tf_free.items() if "inspect" not in name)
    inspect_ok = all(ok for name, ok in tf_free.items() if "inspect" in name)
    lines.append(f"- `edgebird --help` does not import TensorFlow: {h.verdict(help_ok)} "
                 f"({cli.median('`edgebird --help`'):.2f} s wall, vs "
                 f"{statistics.median(tf.walls):.2f} s for a process that only imports "
                 "TensorFlow).")
    lines.append(f"- `edgebird inspect <head .tflite>` does not import TensorFlow: "
                 f"{h.verdict(inspect_ok)} "
                 f"({cli.median('`edgebird inspect BenchHead.tflite`'):.2f} s wall).")
    if cache is not None:
        a, b = cache[0].result, cache[1].result
        lines.append(f"- The second run's embedding step is a cache hit (no file embedded "
                     f"again): {h.verdict(b['computed'] == 0 and b['cached'] == a['files'])} "
                     f"({a['build_s'] / b['build_s']:.0f}x faster).")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="run A's first CV fold only, no final fit, no run B "
                      "(holdout_species=10), one run of each short measurement", retries=True,
                      out=DEFAULT_OUT, out_help="stores and the head model")
    parser.add_argument("--no-cache", action="store_true", help="skip the cache-hit measurement")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = WORKERS[args.worker](json.loads(args.params))
        print(RESULT + json.dumps(result), flush=True)
        return 0
    h.resolve(parser, args)
    runs = 1 if args.quick else 3

    info = h.machine_info()
    tf_version = h.version_of("tensorflow")
    if tf_version == "not installed":
        tf_version = h.version_of("tensorflow-cpu")
    info.update({"tensorflow": tf_version, "keras": h.version_of("keras"),
                 "scikit-learn": h.version_of("scikit-learn")})
    print(f"machine: {info}", flush=True)
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)

    print("(3) light commands: TensorFlow imported? wall time ...", flush=True)
    head = write_head_model(args.out / "head")
    checks = check_imports(head)
    for name, c in checks.items():
        print(f"  after {name}: tensorflow {c['modules']['tensorflow']}, "
              f"keras {c['modules']['keras']}", flush=True)
    cli = measure_cli(head, 3 if args.quick else 5, args.retries)
    for name, (walls, _) in cli.rows.items():
        print(f"  {name}: {h.fmt_list(walls, 3)} s", flush=True)

    cache = None
    data_label = ""
    if not args.no_cache:
        print("(2) cache hit of the embedding step ...", flush=True)
        h.prepare_birdnet()
        data, data_label = feature_data(args.out)
        cache = measure_cache(data, args.out, min(args.retries, 1))  # ~20 s per attempt
        for name, c in zip(("fresh store", "cache hit"), cache, strict=True):
            print(f"  {name}: build_features {c.result['build_s']:.2f} s "
                  f"({c.result['computed']} embedded, {c.result['cached']} from the store), "
                  f"noise windows {c.result['noise_s']:.2f} s, process {c.wall:.2f} s, "
                  f"other CPU {100 * c.other_load:.0f}%", flush=True)

    print(f"(1) import tensorflow, {runs} fresh process(es) ...", flush=True)
    tf = measure_tf_import(runs, args.retries)
    print(f"  import tensorflow {h.fmt_list(tf.tf_seconds)} s, then keras "
          f"{h.fmt_list(tf.keras_seconds)} s", flush=True)
    print(f"(1) train_classifier, {FOLDS} folds, holdout_species=0"
          f"{' (first fold only)' if args.quick else ''} ...", flush=True)
    train = run_child("train", {"seed": 0, "folds": FOLDS, "holdout": 0,
                                "stop_after": 1 if args.quick else 0})
    print(f"  {train.wall:.1f} s, other CPU {100 * train.other_load:.0f}%", flush=True)
    holdout = None
    if not args.quick:
        print(f"(1) train_classifier, {FOLDS} folds, holdout_species={HOLDOUT_DEFAULT} "
              "(the default) ...", flush=True)
        holdout = run_child("train", {"seed": 0, "folds": FOLDS, "holdout": HOLDOUT_DEFAULT})
        print(f"  {holdout.wall:.1f} s, other CPU {100 * holdout.other_load:.0f}%", flush=True)

    x, y, _, _ = synthetic_embeddings(0)
    section = render(info, args.quick, tf, train, holdout, cache,
                     data_label, embedding_stats(x, y), checks, cli)
    h.publish(section, info, t_start, NAME, write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
