"""The research toolkit on real recordings (../shared/data/devbirds; skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from edgebird.experiments.commands import CurveSettings, load_data, run_curve
from edgebird.experiments.fewshot import summarise
from edgebird.pipeline.engine import EngineSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(devbirds, tmp_path_factory):
    pytest.importorskip("librosa")
    store = tmp_path_factory.mktemp("store")
    return load_data(devbirds, ["birdnet", "birdnet-fusion", "handcrafted"],
                     CurveSettings(repeats=3), store, engine=EngineSettings(),
                     progress=False, echo=lambda m: None)


def test_every_backbone_has_the_same_windows(data):
    keys = [list(zip(f.files, f.starts, strict=True)) for f in data.features.values()]
    assert keys[0] == keys[1] == keys[2]
    assert len(keys[0]) == 100  # smart crop: one window per devbirds clip
    dims = {n: f.x.shape[1] for n, f in data.features.items()}
    assert dims == {"birdnet": 1024, "birdnet-fusion": 1768, "handcrafted": 218}
    # the fused features end with the embedding itself
    np.testing.assert_allclose(data.features["birdnet-fusion"].x[:, -1024:],
                               data.features["birdnet"].x, atol=1e-5)


def test_learning_curve_on_real_recordings(data):
    result = run_curve(data, [("birdnet", "logreg"), ("handcrafted", "logreg")],
                       CurveSettings(shots=(1, 4, 100), repeats=3), echo=lambda m: None)
    assert result.shots == [1, 4, 7]  # 10 recordings per class, 3 held out: 7 to draw from
    for split in result.splits:
        assert not set(data.first.groups[split.pool]) & set(data.first.groups[split.test])
    f1 = {(r["backbone"], r["shots"]): r["f1"] for r in summarise(result.rows)}
    assert f1["birdnet", 7] >= 0.9
    assert f1["birdnet", 7] > f1["birdnet", 1]
    assert f1["birdnet", 7] > f1["handcrafted", 7] + 0.2  # pretrained features earn their keep
    noise_fp = [r["noise_fp"] for r in result.rows if r["backbone"] == "birdnet"]
    assert max(noise_fp) <= 0.02
