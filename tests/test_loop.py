"""Issue 20's loop, end to end on devbirds, as a user runs it from the command line, with a
simulated reviewer who knows the truth:

train on 3 recordings per species -> analyze held-out test recordings -> evaluate -> search a
pool of unlabelled recordings for more of the weakest species -> the reviewer marks each result
right or wrong into ``Species/Positive/`` and ``Species/Negative/`` (the Review tab's layout) ->
retrain -> evaluate the same test recordings again.

The three sets are disjoint by recording (3 train, 4 pool, 3 test per species), so the second
evaluation measures what the reviewed clips taught, not recordings it has seen. The assertion
is on the weakest species, the one the loop set out to improve.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from edgebird.cli import main
from edgebird.search.run import Hit, write_clips

N_TRAIN, N_POOL = 3, 4


def _split(devbirds: Path, tmp: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Symlinked train/, pool/ and test/ trees; returns label of each pool file (by its
    resolved path) and the full label of each species folder."""
    rows = list(csv.DictReader(open(devbirds / "labels.csv", newline="")))
    by_species: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_species[r["path"].split("/")[0]].append(r)
    truth, full = {}, {}
    ann = ["file,begin,end,label"]
    for folder, items in sorted(by_species.items()):
        items.sort(key=lambda r: r["path"])
        full[folder] = f"{items[0]['scientific_name']}_{items[0]['common_name']}"
        for i, r in enumerate(items):
            part = "train" if i < N_TRAIN else "pool" if i < N_TRAIN + N_POOL else "test"
            dest = tmp / part / r["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(devbirds / r["path"])
            if part == "pool":
                truth[str(dest.resolve())] = folder
            if part == "test":
                ann.append(f"{r['path']},0,{float(r['duration_s']):g},{full[folder]}")
    (tmp / "test_annotations.csv").write_text("\n".join(ann) + "\n")
    return truth, full


def _train_and_evaluate(tmp: Path, train: Path, name: str) -> dict:
    model = tmp / name
    assert main(["train", str(train), "-o", str(model), "--head", "logreg", "--folds", "3",
                 "--store", str(tmp / "store"), "--seed", "7", "-q"]) == 0
    results = tmp / f"{name}_results"
    assert main(["analyze", str(tmp / "test"), "-o", str(results), "-c",
                 str(model / "CustomClassifier.tflite"), "-q"]) == 0
    ev = tmp / f"{name}_eval"
    assert main(["evaluate", str(results), "-a", str(tmp / "test_annotations.csv"),
                 "--audio-root", str(tmp / "test"), "--audio", str(tmp / "test"),
                 "-o", str(ev), "-q"]) == 0
    return json.loads((ev / "evaluation.json").read_text())


@pytest.mark.integration
def test_loop_train_evaluate_search_review_retrain(devbirds, tmp_path):
    truth, full = _split(devbirds, tmp_path)
    first = _train_and_evaluate(tmp_path, tmp_path / "train", "model1")
    per_class = {r["class"]: r for r in first["classes"]}
    assert set(per_class) == set(full.values())

    # The weakest species by F1 at the model's thresholds (ties: the lower AP).
    weak_label = min(per_class, key=lambda c: (per_class[c]["f1"], per_class[c]["ap"]))
    weak = next(f for f, lab in full.items() if lab == weak_label)

    # Search the pool for it: the store of the pool, queried by the species' training clips.
    pool_store = tmp_path / "pool_store"  # the pool only: training's store holds the train set
    assert main(["embed", str(tmp_path / "pool"), "-o", str(pool_store), "-q"]) == 0
    hits_csv = tmp_path / "hits.csv"
    queries = sorted(str(p) for p in (tmp_path / "train" / weak).iterdir())
    assert main(["search", str(pool_store), *queries, "-k", "12",
                 "--per-recording", "2", "-o", str(hits_csv)]) == 0
    hits = [Hit(int(r["rank"]), r["file"], float(r["start"]), float(r["end"]),
                float(r["score"]))
            for r in csv.DictReader(open(hits_csv, newline=""))]
    assert hits, "the search found nothing"

    # The reviewer: right -> Positive/, wrong -> Negative/ of the weak species.
    retrain = tmp_path / "train2"
    for src in (tmp_path / "train").iterdir():
        (retrain / src.name).mkdir(parents=True)
        for f in src.iterdir():
            (retrain / src.name / f.name).symlink_to(f.resolve())
    right = [h for h in hits if truth[str(Path(h.file).resolve())] == weak]
    wrong = [h for h in hits if h not in right]
    assert right, f"no result of the search was {weak}"
    write_clips(right, retrain, folder=f"{weak}/Positive")
    if wrong:
        write_clips(wrong, retrain, folder=f"{weak}/Negative")

    second = _train_and_evaluate(tmp_path, retrain, "model2")
    after = {r["class"]: r for r in second["classes"]}[weak_label]
    before = per_class[weak_label]
    print(f"weakest: {weak_label}; search: {len(right)} right, {len(wrong)} wrong of "
          f"{len(hits)}; F1 {before['f1']:.3f} -> {after['f1']:.3f}, AP {before['ap']:.3f} -> "
          f"{after['ap']:.3f}; macro F1 {first['macro']['f1']:.3f} -> {second['macro']['f1']:.3f}")
    assert after["f1"] > before["f1"]
    # The others did not pay for it.
    assert second["macro"]["f1"] >= first["macro"]["f1"] - 0.02
