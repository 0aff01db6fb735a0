"""A clip's spectrogram as a small palette PNG, with numpy and zlib only.

No plotting library on the Pi: a short-time Fourier transform in numpy, 0-12 kHz in 128 rows
(where bird song is), at most 480 columns whatever the clip's length, 70 dB of range, and a
256-colour palette so the image is one byte a pixel before compression (tens of kilobytes).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

N_FFT = 1024
MAX_COLUMNS = 480
ROWS = 128
TOP_HZ = 12000.0
RANGE_DB = 70.0
#: only the first seconds of a clip are drawn (clips are a detection plus context: seconds)
MAX_SECONDS = 20.0


def _palette() -> np.ndarray:
    """Dark blue through magenta to pale yellow (a hand-made 'magma'-like ramp): loud is
    bright, and it stays readable in grey."""
    t = np.linspace(0.0, 1.0, 256)
    stops = np.array([[0, 0, 4], [80, 18, 123], [182, 54, 121], [251, 136, 97],
                      [252, 253, 191]], dtype=float)
    x = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(t, x, stops[:, c]) for c in range(3)], axis=1).astype(np.uint8)


PALETTE = _palette()


def levels(audio: np.ndarray, rate: int) -> np.ndarray:
    """``ROWS x columns`` of 0-255, low frequencies at the bottom."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    hop = max(N_FFT // 4, -(-(len(audio) - N_FFT) // (MAX_COLUMNS - 1)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::hop][:MAX_COLUMNS]
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)) ** 2
    top = min(power.shape[1], int(TOP_HZ / (rate / N_FFT)))
    top -= top % ROWS
    bands = power[:, :top].reshape(len(frames), ROWS, top // ROWS).mean(axis=2)
    db = 10.0 * np.log10(bands + 1e-12)
    scaled = (db - (db.max() - RANGE_DB)) / RANGE_DB
    return (np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8).T[::-1]


def png(indices: np.ndarray, palette: np.ndarray = PALETTE) -> bytes:
    """An 8-bit palette PNG of ``indices`` (rows x columns of palette entries)."""
    height, width = indices.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = np.zeros((height, width + 1), dtype=np.uint8)  # filter byte 0 ("none") per row
    raw[:, 1:] = indices
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", palette.astype(np.uint8).tobytes())
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))


def clip_png(path: Path) -> bytes:
    """The PNG of a clip file (the first ``MAX_SECONDS``, channels averaged)."""
    with sf.SoundFile(str(path)) as f:
        audio = f.read(int(MAX_SECONDS * f.samplerate), dtype="float32", always_2d=True)
        rate = f.samplerate
    return png(levels(audio.mean(axis=1), rate))
