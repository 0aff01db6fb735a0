"""Issue 21 item 8: BirdNET restricted to your species vs the head, and a cheap late fusion.

On devbirds (every class a BirdNET species), the same grouped folds as ``edgebird train``
(``train_classifier`` with the default settings): each fold's held-out windows scored by the
head, by BirdNET's own output layer restricted to the classes (``birdnet_prior``), and by a
late fusion that adds the two logits (what the head learnt plus what BirdNET knows). Prints
macro F1 at 0.5 and AUPRC per model, mean over folds. A quality measurement (no timings);
the numbers are in docs/TRAINING.md.

    EDGEBIRD_DEVBIRDS=/work/shared/data/devbirds python bench/bench_birdnet_prior.py [--head logreg]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np


def main() -> None:
    from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
    from edgebird.backbones.birdnet.model import BirdNET
    from edgebird.training.birdnet_prior import prior_for
    from edgebird.training.classifier import load_training_set
    from edgebird.training.features import build_features, synthetic_negatives
    from edgebird.training.metrics import class_metrics
    from edgebird.training.train import TrainSettings, train_classifier

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--head", default="dense")
    ap.add_argument("--store", default=os.path.join(tempfile.gettempdir(), "edgebird-bench-store"))
    args = ap.parse_args()
    data = os.environ.get("EDGEBIRD_DEVBIRDS", "/work/shared/data/devbirds")
    s = TrainSettings(head=args.head, holdout_species=0)
    ts = load_training_set(data)
    model = BirdNET()
    feats = build_features(ts, args.store, AudioSettings(crop_mode=TRAINING_CROP_MODE), model,
                           progress=False)
    negatives = synthetic_negatives(model, ts.classes, s.synthetic_negatives, s.seed,
                                    cache=args.store)
    result = train_classifier(feats, s, negatives, echo=lambda m: None)
    prior = prior_for(ts.classes, model)
    cols = prior.columns
    half = np.full(len(cols), 0.5)
    rows: dict[str, list] = {"head": [], "BirdNET restricted": [], "fusion (sum of logits)": []}
    for f in result.folds:
        y = f.test_y[:, cols]
        p_head = np.clip(f.test_p[:, cols], 1e-7, 1 - 1e-7)
        z_head = np.log(p_head / (1 - p_head))
        z_bn = prior.logits(feats.x[f.test_index])
        for name, p in (("head", p_head), ("BirdNET restricted", 1 / (1 + np.exp(-z_bn))),
                        ("fusion (sum of logits)", 1 / (1 + np.exp(-(z_head + z_bn))))):
            rows[name].append(class_metrics(y, p, prior.classes, half)[0])
    print(f"devbirds, head {s.head_name()}, {len(result.folds)} folds, {len(cols)} BirdNET "
          f"classes (excluded: {prior.excluded or 'none'}); mean over folds at 0.5")
    print("| model | macro F1@0.5 | macro AUPRC | macro AUROC |\n|---|--:|--:|--:|")
    for name, ms in rows.items():
        print(f"| {name} | {np.mean([m['f1@0.5'] for m in ms]):.3f} | "
              f"{np.mean([m['auprc'] for m in ms]):.3f} | "
              f"{np.mean([m['auroc'] for m in ms]):.3f} |")


if __name__ == "__main__":
    main()
