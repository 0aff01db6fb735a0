"""Integration on real recordings (../shared/data/devbirds; skipped with a reason when absent)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import soxr
from test_model import plain_birdnet

from edgebird.audio import AudioSettings, planned_starts, probe
from edgebird.pipeline import engine as eng
from edgebird.pipeline.embed import embed_files

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clips(devbirds):
    with open(devbirds / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(devbirds / r["path"], r["scientific_name"]) for r in rows]


def reference_windows(path) -> np.ndarray:
    """Independent of edgebird's reader: whole file, mean downmix, one-shot soxr, slicing."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1)
    if sr != 48000:
        mono = soxr.resample(mono, sr, 48000)
    n = len(x) * 48000 // sr
    mono = np.pad(mono, (0, max(0, n - len(mono))))[:n]
    out = []
    for s in range(0, n - 48000 + 1, 144000):
        w = np.zeros(144000, dtype=np.float32)
        piece = mono[s:s + 144000]
        w[:len(piece)] = piece
        out.append(w)
    return np.stack(out)


def test_engine_embeddings_equal_the_plain_model(tmp_path, clips):
    """Engine (2 workers, XNNPACK, rewritten model) vs unmodified model with XNNPACK off.

    Reading is bit-identical to the independent reference; what remains is XNNPACK's
    summation order: measured worst 1.03e-5 absolute on values up to ~2.5 (5e-6 relative).
    """
    chosen = clips[::10]  # one clip per species, mixed rates and channel counts
    summary = embed_files([p for p, _ in chosen], tmp_path / "store",
                          engine=eng.EngineSettings(workers=2, batch_size=8), progress=False)
    assert summary.failed == [] and summary.computed == len(chosen)
    by_source = {e.source: e for e in summary.entries}
    for path, _ in chosen:
        _, embs = by_source[str(path.resolve())].load()
        ref, _ = plain_birdnet(reference_windows(path))
        assert embs.shape == ref.shape
        np.testing.assert_allclose(embs, ref, atol=1e-5, rtol=1e-5, err_msg=str(path))


def test_birdnet_puts_the_labelled_species_first(clips):
    """BirdNET's own logits, max over each clip's windows: top-1 is the labelled species."""
    from edgebird.backbones.birdnet.model import BirdNET

    model = BirdNET(batch_size=8)
    settings = AudioSettings()
    tasks = []
    for i, (path, _) in enumerate(clips):
        info = probe(path)
        tasks.append(eng.Task(i, 0, info, planned_starts(info, settings)))
    results = list(eng.run(tasks, model, settings,
                           eng.EngineSettings(workers=2, keep_logits=True)))
    assert all(isinstance(r, eng.PartResult) for r in results)
    sci = [label.split("_")[0] for label in model.labels]
    hits = 0
    misses = []
    for r in results:
        top = sci[int(np.argmax(r.logits.max(axis=0)))]
        truth = clips[r.job][1]
        hits += top == truth
        if top != truth:
            misses.append(f"{clips[r.job][0].name}: {truth} -> {top}")
    accuracy = hits / len(clips)
    assert accuracy >= 0.9, f"top-1 {accuracy:.0%}; misses: {misses}"
