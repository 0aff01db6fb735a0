"""edgebird's answers against BirdNET-Analyzer's and birdnet's, on real recordings.

Runs ``bench/bench_peers.py --agreement-only`` on a spread of ../shared/data/devbirds files
when the peers' offline virtualenv exists (docs/PEERS.md; CI does not build it, so there this
is skipped with its reason)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(os.environ.get("EDGEBIRD_PEERS_VENV", "/tmp/venv-peers"))
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def agreement(devbirds, tmp_path_factory) -> dict:
    if not (VENV / "bin" / "birdnet-analyze").is_file():
        pytest.skip(f"the peers' virtualenv is not at {VENV} (docs/PEERS.md; set "
                    "EDGEBIRD_PEERS_VENV)")
    out = tmp_path_factory.mktemp("peers")
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_peers.py"),
                          "--agreement-only", "--files", "16", "--no-docs", "--out", str(out),
                          "--json", str(out / "agreement.json"), "--peers-venv", str(VENV)],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads((out / "agreement.json").read_text())["agreement"]


def test_same_samples_give_the_same_scores(agreement):
    for peer in ("bna_windows", "birdnet_windows"):
        assert agreement[peer]["max_score_diff"] <= 1e-4, agreement[peer]
        assert agreement[peer]["top1_same"] == 1.0


def test_files_at_48_khz_agree_end_to_end(agreement):
    for peer in ("bna_files", "birdnet_files"):
        at48 = agreement[peer]["48000_hz"]
        assert at48["max_score_diff"] <= 1e-4, at48
    for peer in ("bna_files", "birdnet_files"):  # other rates: the resamplers differ a little
        for key, sub in agreement[peer].items():
            if key.endswith("_hz"):
                assert sub["max_score_diff"] <= 5e-3 and sub["top1_same"] >= 0.95, (key, sub)


def test_raven_tables_equal_bna_but_for_the_documented_differences(agreement):
    r = agreement["raven"]
    at48 = [row for row in r["only_edgebird"] + r["only_bna"] if not row[-1]]
    assert not at48, at48  # rows in one table only: at most for resampled (44.1 kHz) files
    assert not r["other_cells"], r["other_cells"][:5]
    assert r["identical_files_with_codes"] >= agreement["files_by_rate"].get("48000", 0)
