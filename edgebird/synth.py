"""Synthetic bird-like sounds, made in code, for the demo and the tests.

Each "species" is a parametric song (a rising whistle, a fast trill, a two-note call, a warble)
with per-clip random variation in pitch, timing and loudness, over a noise floor. They are
not birds, but BirdNET's embedding separates them the way it separates real songs, which is
enough to show the pipeline end to end without anyone's recordings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 48000


def _tone(freqs: np.ndarray, sr: int = SR) -> np.ndarray:
    """A sine whose instantaneous frequency follows ``freqs`` (Hz per sample)."""
    return np.sin(2 * np.pi * np.cumsum(freqs) / sr)


def _envelope(n: int, attack: float = 0.1) -> np.ndarray:
    a = max(1, int(n * attack))
    env = np.ones(n)
    env[:a] = np.linspace(0, 1, a)
    env[-a:] = np.linspace(1, 0, a)
    return env


def whistle(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    n = int(sr * rng.uniform(0.6, 0.9))
    f0 = rng.uniform(2800, 3400)
    return _tone(np.linspace(f0, f0 * 1.35, n), sr) * _envelope(n)


def trill(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    rate = rng.uniform(14, 18)  # pulses per second
    n = int(sr * rng.uniform(1.0, 1.4))
    f = rng.uniform(4800, 5400)
    t = np.arange(n) / sr
    pulses = (np.sin(2 * np.pi * rate * t) > 0.3).astype(float)
    return _tone(np.full(n, f) - 600 * ((t * rate) % 1.0), sr) * pulses * _envelope(n, 0.05)


def two_note(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    hi, lo = rng.uniform(3900, 4300), rng.uniform(2600, 2900)
    n1, gap, n2 = int(sr * 0.3), int(sr * rng.uniform(0.08, 0.15)), int(sr * 0.45)
    a = _tone(np.full(n1, hi), sr) * _envelope(n1)
    b = _tone(np.full(n2, lo), sr) * _envelope(n2)
    return np.concatenate([a, np.zeros(gap), b])


def warble(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    n = int(sr * rng.uniform(1.0, 1.5))
    t = np.arange(n) / sr
    fm = rng.uniform(6, 9)
    freqs = rng.uniform(2000, 2300) + 700 * np.sin(2 * np.pi * fm * t) + 400 * t
    return _tone(freqs, sr) * _envelope(n)


SONGS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "Synthetic whistler_Whistler": whistle,
    "Synthetic triller_Triller": trill,
    "Synthetic caller_Two-note caller": two_note,
    "Synthetic warbler_Warbler": warble,
}


def noise(n: int, rng: np.random.Generator, color: str = "pink") -> np.ndarray:
    """White, pink (1/f, like wind) or brown (1/f^2, like distant traffic) noise, unit RMS."""
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    spec /= f ** (0.5 if color == "pink" else 1.0)
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def clip(song: str | None, rng: np.random.Generator, seconds: float = 6.0, sr: int = SR,
         snr_db: float = 20.0, calls: int = 3) -> np.ndarray:
    """A clip: ``calls`` renditions of ``song`` at random times over pink noise (``song=None``
    gives noise only). float32 in [-1, 1]."""
    n = int(seconds * sr)
    out = 0.01 * noise(n, rng)
    if song is not None:
        make = SONGS[song]
        for _ in range(calls):
            s = make(rng, sr) * 10 ** (snr_db / 20) * 0.01 * rng.uniform(0.7, 1.0)
            at = int(rng.uniform(0, max(1, n - len(s))))
            out[at:at + len(s)] += s[: n - at]
    peak = np.max(np.abs(out))
    return (out / peak * 0.8 if peak > 0.8 else out).astype(np.float32)


def write_dataset(root: str | Path, clips_per_class: int = 6, seconds: float = 6.0,
                  seed: int = 0, noise_folder: bool = True) -> dict[str, list[Path]]:
    """Write ``root/<label>/<label-slug>_NN.wav`` for every synthetic song (plus ``Noise``)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    made: dict[str, list[Path]] = {}
    labels: list[str | None] = list(SONGS)
    if noise_folder:
        labels.append(None)
    for label in labels:
        folder = root / (label or "Noise")
        folder.mkdir(parents=True, exist_ok=True)
        slug = (label or "noise").split("_")[-1].lower().replace(" ", "-")
        made[label or "Noise"] = []
        for i in range(clips_per_class):
            p = folder / f"{slug}_{i:02d}.wav"
            sf.write(p, clip(label, rng, seconds), SR, subtype="PCM_16")
            made[label or "Noise"].append(p)
    return made


NOISE_KINDS = ("rain", "wind", "engine", "white", "quiet")


def noise_window(kind: str, rng: np.random.Generator, seconds: float = 3.0,
                 sr: int = SR) -> np.ndarray:
    """One window of a sound that is not a bird: the usual sources of false positives.

    rain: pink noise plus dense random drops; wind: brown noise with slow gusts; engine: a
    low harmonic hum with vibration; white: broadband hiss; quiet: a faint noise floor.
    """
    n = int(seconds * sr)
    t = np.arange(n) / sr
    if kind == "rain":
        x = 0.3 * noise(n, rng, "pink")
        drops = np.zeros(n)
        idx = rng.integers(0, n, size=int(rng.uniform(200, 800) * seconds))
        drops[idx] = rng.uniform(-1, 1, size=len(idx))
        x += np.convolve(drops, np.exp(-np.arange(200) / 20.0), mode="same")
    elif kind == "wind":
        gust = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 0.8) * t + rng.uniform(0, 6))
        x = noise(n, rng, "brown") * gust
    elif kind == "engine":
        f0 = rng.uniform(25, 90)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
        x = x * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(2, 8) * t)) + 0.2 * noise(n, rng)
    elif kind == "white":
        x = rng.standard_normal(n)
    elif kind == "quiet":
        x = 0.01 * noise(n, rng)
    else:
        raise ValueError(f"unknown noise kind {kind!r}; one of {NOISE_KINDS}")
    x = x / (np.max(np.abs(x)) + 1e-12) * rng.uniform(0.05, 0.8)
    return x.astype(np.float32)


def noise_windows(count: int, seed: int = 0, sr: int = SR) -> tuple[np.ndarray, list[str]]:
    """``count`` noise windows cycling through every kind; returns (windows, kinds)."""
    rng = np.random.default_rng(seed)
    kinds = [NOISE_KINDS[i % len(NOISE_KINDS)] for i in range(count)]
    return np.stack([noise_window(k, rng, sr=sr) for k in kinds]), kinds
