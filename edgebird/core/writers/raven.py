"""Raven selection table (``<stem>.BirdNET.selection.table.txt``)."""

from __future__ import annotations

from collections.abc import Mapping

from edgebird.core import BIRDNET_FMAX_HZ
from edgebird.core.scores import Detection
from edgebird.core.writers import bna_time, split_label

HEADER = ("Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
          "High Freq (Hz)\tCommon Name\tSpecies Code\tConfidence\tBegin Path\tFile Offset (s)\n")
SUFFIX = ".BirdNET.selection.table.txt"


def freq_band(native_rate: int, fmin: float = 0.0, fmax: float = BIRDNET_FMAX_HZ,
              speed: float = 1.0) -> tuple[int, int]:
    """Low/high frequency columns: the bandpass, capped by the file's Nyquist and 15 kHz."""
    high = int(min(native_rate / 2, int(BIRDNET_FMAX_HZ / speed), int(fmax / speed)))
    low = max(0, int(fmin / speed))
    return low, high


def render(detections: list[Detection], audio_path: str, native_rate: int,
           fmin: float = 0.0, fmax: float = BIRDNET_FMAX_HZ,
           codes: Mapping[str, str] | None = None) -> str:
    """One row per detection, numbered from 1. A file without detections gets BNA's dummy
    ``nocall`` row (so combined tables still list the file)."""
    low, high = freq_band(native_rate, fmin, fmax)
    codes = codes or {}
    rows = [HEADER]
    for i, d in enumerate(detections, start=1):
        start = bna_time(d.start)
        rows.append(f"{i}\tSpectrogram 1\t1\t{start}\t{bna_time(d.end)}\t{low}\t{high}\t"
                    f"{split_label(d.label)[1]}\t{codes.get(d.label, d.label)}\t"
                    f"{d.confidence:.4f}\t{audio_path}\t{start}\n")
    if not detections:
        rows.append(f"1\tSpectrogram 1\t1\t0\t3\t{low}\t{high}\tnocall\tnocall\t1.0\t"
                    f"{audio_path}\t0\n")
    return "".join(rows)
