"""BirdNET restricted to your species: the baseline a custom head has to beat.

Most classes users train are BirdNET species, and BirdNET's own output layer
(``model/CLASS_DENSE_LAYER``: one fully connected layer, 1,024 embedding values -> 6,522
logits, no activation) already holds a classifier for each, trained on far more audio than
any user has. Because that layer reads exactly the embedding the store keeps, its logits for
any stored window are ``x @ W + b``: no audio is re-run and the store keeps no logits.

For the classes whose label is a BirdNET label (a folder named by a scientific name gets
BirdNET's full ``Scientific_Common`` label, see ``dataset``), ``compare`` scores each
cross-validation fold's held-out windows with ``sigmoid`` of those logits and computes the
same class metrics as the head's, at 0.5 (BirdNET's own decision point; nothing of it is
tuned on the data), beside the head's figures for the same classes on the same windows.
Classes that are not BirdNET labels are listed as excluded, never scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebird.heads.base import sigmoid
from edgebird.training.metrics import class_metrics

#: The macro figures put side by side (head at its thresholds and at 0.5; BirdNET at 0.5).
MACRO_KEYS = ("f1@0.5", "f1@thr", "auprc", "auroc")


@dataclass(frozen=True)
class BirdNETPrior:
    """BirdNET's output layer restricted to the training classes it knows.

    ``columns``: indices into the training classes; ``weights`` [dim, k] and ``bias`` [k]
    give those classes' logits from an embedding; ``excluded``: classes BirdNET lacks."""

    classes: list[str]
    columns: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    excluded: list[str]

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.weights + self.bias

    def scores(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(x))

    def full(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(W [dim, all classes], b)``: the prior of the ``anchored`` head, BirdNET's
        column for each class it knows and zeros (no prior: plain logistic regression)
        for the excluded ones."""
        k = len(self.classes) + len(self.excluded)
        w, b = np.zeros((dim, k), dtype=np.float32), np.zeros(k, dtype=np.float32)
        w[:, self.columns], b[self.columns] = self.weights, self.bias
        return w, b


def output_layer(model_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(W [1024, 6522], b [6522])`` of BirdNET's class layer, read from the model file.

    Raises ValueError when the graph's logits are not one fully connected layer on the
    embedding tensor (a different model): then there is no restricted baseline to give."""
    from edgebird.backbones.birdnet import graph as tflite_graph
    from edgebird.backbones.birdnet.files import EMBEDDING_TENSOR, LOGITS_TENSOR

    model = tflite_graph.read_model(Path(model_path).read_bytes())
    sg = model.subgraphs[0]
    names = [t.name.decode() if isinstance(t.name, bytes) else str(t.name) for t in sg.tensors]
    if EMBEDDING_TENSOR not in names or LOGITS_TENSOR not in names:
        raise ValueError(f"{model_path}: no {EMBEDDING_TENSOR} -> {LOGITS_TENSOR} layer")
    emb, out = names.index(EMBEDDING_TENSOR), names.index(LOGITS_TENSOR)
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex].builtinCode
        ins = [int(t) for t in op.inputs]
        if int(op.outputs[0]) != out:
            continue
        act = getattr(op.builtinOptions, "fusedActivationFunction", 0)
        if code != 9 or ins[0] != emb or len(ins) < 3 or act != 0:  # 9: FULLY_CONNECTED
            break
        w, b = (_const(model, sg, i) for i in ins[1:3])
        if w is None or b is None:
            break
        return w.T.astype(np.float32), b.astype(np.float32)  # tflite keeps W as [out, in]
    raise ValueError(f"{model_path}: the logits are not one dense layer on the embedding")


def _const(model, sg, index: int) -> np.ndarray | None:
    t = sg.tensors[index]
    data = model.buffers[t.buffer].data if index >= 0 else None
    if data is None or t.type != 0:  # float32 constants only
        return None
    return np.frombuffer(bytes(data), dtype=np.float32).reshape(t.shape).copy()


def restrict(classes: list[str], labels: list[str], weights: np.ndarray,
             bias: np.ndarray) -> BirdNETPrior:
    """The prior for ``classes``: those equal to one of BirdNET's ``labels`` (full
    ``Scientific_Common``) keep their row of the layer; the rest are excluded."""
    index = {lab: i for i, lab in enumerate(labels)}
    cols = [c for c, name in enumerate(classes) if name in index]
    rows = [index[classes[c]] for c in cols]
    return BirdNETPrior([classes[c] for c in cols], np.array(cols, dtype=int),
                        weights[:, rows], bias[rows],
                        [c for c in classes if c not in index])


def prior_for(classes: list[str], model) -> BirdNETPrior | None:
    """The prior for a BirdNET backbone whose features are its plain embedding (not a
    fusion of layers); None for any other model, whose features the layer cannot read, and
    when no class is a BirdNET label."""
    from edgebird.backbones.birdnet.model import BirdNET

    if not isinstance(model, BirdNET) or model.layers or not set(classes) & set(model.labels):
        return None
    w, b = output_layer(model.model_path)
    if w.shape[0] != model.embedding_dim:
        return None
    return restrict(classes, model.labels, w, b)


def _macro(rows: list[dict]) -> dict:
    return {k: float(rows[0][k]) for k in MACRO_KEYS}


def _mean(dicts: list[dict]) -> dict:
    return {k: float(np.nanmean([d[k] for d in dicts])) for k in MACRO_KEYS}


def compare(result, feats, prior: BirdNETPrior | None) -> dict:
    """BirdNET restricted to the mapped classes vs the head, on each fold's held-out windows.

    Returns ``{}`` when there is nothing to compare (no prior, no mapped class, no folds);
    otherwise the mapped and excluded classes, per-fold and mean macro figures of both, and
    BirdNET's per-class rows (mean over folds)."""
    if prior is None or not len(prior.columns) or not result.folds:
        return {}
    cols = prior.columns
    folds, birdnet_rows = [], []
    for f in result.folds:
        if f.test_index is None:  # pragma: no cover - every fold of train_classifier has one
            return {}
        y = f.test_y[:, cols]
        half = np.full(len(cols), 0.5)
        bn = class_metrics(y, prior.scores(feats.x[f.test_index]), prior.classes, half)
        head = class_metrics(y, f.test_p[:, cols], prior.classes, f.thresholds[cols])
        folds.append({"fold": f.fold, "birdnet": _macro(bn), "head": _macro(head)})
        birdnet_rows.append(bn[1:])
    per_class = []
    for rows in zip(*birdnet_rows, strict=True):
        per_class.append({"class": rows[0]["class"],
                          **{k: float(np.nanmean([r[k] for r in rows])) for k in MACRO_KEYS},
                          "positives": int(sum(r["positives"] for r in rows))})
    return {"classes": prior.classes, "excluded": prior.excluded, "threshold": 0.5,
            "birdnet": _mean([f["birdnet"] for f in folds]),
            "head": _mean([f["head"] for f in folds]), "folds": folds,
            "per_class": per_class}


def report_lines(cmp: dict) -> list[str]:
    """REPORT.md's section: which to deploy, on the same folds and windows."""
    if not cmp:
        return []
    b, h = cmp["birdnet"], cmp["head"]
    n = len(cmp["classes"])
    lines = ["", "## BirdNET restricted to your species", "",
             f"BirdNET's own scores (its output layer, sigmoid, threshold 0.5) for the {n} "
             "class(es) that are BirdNET labels, on the same folds' held-out windows as the "
             "head. Nothing of BirdNET was fitted to your data.", "",
             "| model (same classes, same windows) | macro F1@0.5 | macro F1@thr | "
             "macro AUPRC | macro AUROC |", "|---|--:|--:|--:|--:|",
             f"| your head | {h['f1@0.5']:.3f} | {h['f1@thr']:.3f} | {h['auprc']:.3f} | "
             f"{h['auroc']:.3f} |",
             f"| BirdNET restricted | {b['f1@0.5']:.3f} | (0.5) | {b['auprc']:.3f} | "
             f"{b['auroc']:.3f} |", ""]
    if cmp["excluded"]:
        lines.append(f"Not BirdNET labels, so excluded from this comparison: "
                     f"{', '.join(cmp['excluded'])}.")
    else:
        lines.append("Every class is a BirdNET label.")
    better = "BirdNET restricted" if b["f1@0.5"] > h["f1@thr"] else "your head"
    lines += ["", f"Higher macro F1 here: **{better}** (for the BirdNET classes; a class "
                  "BirdNET lacks needs the head)."]
    return lines
