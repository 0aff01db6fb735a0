"""Audacity label track (``<stem>.BirdNET.results.txt``): no header."""

from __future__ import annotations

from edgebird.core.scores import Detection
from edgebird.core.writers import bna_time

SUFFIX = ".BirdNET.results.txt"


def render(detections: list[Detection]) -> str:
    return "".join(f"{bna_time(d.start)}\t{bna_time(d.end)}\t{d.label.replace('_', ', ')}\t"
                   f"{d.confidence:.4f}\n" for d in detections)
