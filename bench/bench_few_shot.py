"""Few-shot quality on devbirds: the anchored head vs logistic regression from scratch vs
BirdNET restricted to the species, with 1 and 3 recordings per species to train.

Why: the commonest few-shot case is one or two recordings of a species (issue 21, items 1
and 8). The default cross-validation cannot measure it (a class of one recording cannot be
held out), so this script trains on k recordings per species and scores the others.

What is measured (quality, not speed): devbirds' windows as ``edgebird train`` makes them
(smart crop, one or two windows per clip; the shared embedding store), 64 synthetic noise
windows as background, as ``train`` adds them. For k in (1, 3), over ``--draws`` draws
(draw r trains on recordings r .. r+k-1 of each species, in file order, and tests on the
rest): macro F1 at 0.5 and macro AUPRC on the test windows, and the share of 100 other
noise windows that fire any class at 0.5. Then open-set false positives: each species in
turn is left out, the head is trained on the other nine (all their recordings), and the
share of the left-out species' windows that fire any class at 0.5 is averaged. Heads:
``anchored`` (edgebird's default: logistic regression anchored to BirdNET's output layer),
``logreg`` (the same loss from scratch), both C = 0.1, and BirdNET's own scores for the
ten species (sigmoid of its output layer, nothing fitted). Quality figures are
deterministic, so one run is enough; nothing is timed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

DEVBIRDS = harness.ROOT.parent / "shared" / "data" / "devbirds"


def _macro(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, f1_score

    k = y.shape[1]
    f1 = np.mean([f1_score(y[:, c] > 0.5, p[:, c] >= 0.5, zero_division=0) for c in range(k)])
    ap = np.mean([average_precision_score(y[:, c] > 0.5, p[:, c]) for c in range(k)])
    return float(f1), float(ap)


def main() -> None:
    p = harness.parser(__doc__)
    p.add_argument("--draws", type=int, default=10, help="draws per shot count (default 10)")
    args = p.parse_args()
    if not DEVBIRDS.is_dir():
        sys.exit(f"devbirds not found at {DEVBIRDS}: nothing to measure")
    info, t_start = harness.begin()
    from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
    from edgebird.backbones.birdnet.model import BirdNET
    from edgebird.heads import make_head, sigmoid
    from edgebird.training.birdnet_prior import prior_for
    from edgebird.training.classifier import default_store, load_training_set
    from edgebird.training.features import build_features, synthetic_negatives

    ts = load_training_set(DEVBIRDS)
    model = BirdNET()
    store = default_store()
    f = build_features(ts, store, AudioSettings(crop_mode=TRAINING_CROP_MODE), model,
                       progress=False)
    neg = synthetic_negatives(model, ts.classes, 64, 0, cache=store).x
    noise = synthetic_negatives(model, ts.classes, 100, 1000, cache=store).x
    prior = prior_for(ts.classes, model)
    w0, b0 = prior.full(model.embedding_dim)
    x, y, groups = f.x, f.y, f.groups
    k = y.shape[1]
    cls = y.argmax(axis=1)
    recs = {c: sorted(set(groups[cls == c])) for c in range(k)}

    def heads(cols: list[int]) -> dict:
        return {"anchored": make_head("anchored", C=0.1, prior_weights=w0[:, cols],
                                      prior_bias=b0[cols]),
                "logreg": make_head("logreg", C=0.1)}

    def birdnet(a: np.ndarray, cols: list[int]) -> np.ndarray:
        return sigmoid(a @ w0[:, cols] + b0[cols])

    everything = list(range(k))
    rows = []
    for shots in (1, 3):
        got: dict[str, list] = {n: [] for n in ("anchored", "logreg", "BirdNET restricted")}
        for r in range(args.draws):
            train_groups = {recs[c][(r + s) % len(recs[c])] for c in range(k)
                            for s in range(shots)}
            tr = np.array([g in train_groups for g in groups])
            xtr = np.concatenate([x[tr], neg])
            ytr = np.concatenate([y[tr], np.zeros((len(neg), k))])
            for name, head in heads(everything).items():
                head.fit(xtr, ytr)
                got[name].append((*_macro(y[~tr], head.scores(x[~tr])),
                                  float(np.mean((head.scores(noise) >= 0.5).any(axis=1)))))
            got["BirdNET restricted"].append(
                (*_macro(y[~tr], birdnet(x[~tr], everything)),
                 float(np.mean((birdnet(noise, everything) >= 0.5).any(axis=1)))))
        for name, v in got.items():
            m = np.mean(np.array(v), axis=0)
            rows.append((shots, name, *m))
    held: dict[str, list[float]] = {"anchored": [], "logreg": [], "BirdNET restricted": []}
    for h in range(k):
        keep = [c for c in range(k) if c != h]
        tr = cls != h
        xtr = np.concatenate([x[tr], neg])
        ytr = np.concatenate([y[tr][:, keep], np.zeros((len(neg), k - 1))])
        for name, head in heads(keep).items():
            held[name].append(float(np.mean(
                (head.fit(xtr, ytr).scores(x[cls == h]) >= 0.5).any(axis=1))))
        held["BirdNET restricted"].append(float(np.mean(
            (birdnet(x[cls == h], keep) >= 0.5).any(axis=1))))
    table = ["| recordings per species to train | model | macro F1 @ 0.5 on the rest | "
             "macro AUPRC | noise windows firing |", "|--:|---|--:|--:|--:|"]
    table += [f"| {s} | {n} | {f1:.3f} | {ap:.3f} | {100 * fp:.1f}% |"
              for s, n, f1, ap, fp in rows]
    open_set = ["| model | left-out species' windows firing another class (mean of 10) |",
                "|---|--:|"]
    open_set += [f"| {n} | {100 * np.mean(v):.1f}% |" for n, v in held.items()]
    section = "\n".join([
        "## Few-shot quality: the anchored head (`bench/bench_few_shot.py`)", "",
        harness.generated_by(info, "bench_few_shot.py"), "",
        f"devbirds, smart-crop windows ({len(x)} windows of 100 clips), 64 synthetic noise "
        f"windows as background; {args.draws} draws per row (draw r trains on recordings "
        "r .. r+k-1 of each species and tests on the others); 100 other noise windows. "
        "C = 0.1 for both heads; every score at 0.5. Quality only, nothing timed.", "",
        *table, "",
        "Open set (each species left out in turn, trained on the other nine):", "",
        *open_set,
    ])
    harness.publish(section, info, t_start, "bench_few_shot", write=not args.no_docs)


if __name__ == "__main__":
    main()
