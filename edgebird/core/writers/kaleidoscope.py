"""Kaleidoscope table (``<stem>.BirdNET.results.kaleidoscope.csv``)."""

from __future__ import annotations

import os

from edgebird.core.scores import Detection
from edgebird.core.writers import bna_time, split_label

HEADER = ("INDIR,FOLDER,IN FILE,OFFSET,DURATION,scientific_name,common_name,confidence,lat,"
          "lon,week,overlap,sensitivity\n")
SUFFIX = ".BirdNET.results.kaleidoscope.csv"


def render(detections: list[Detection], audio_path: str, lat: float = -1, lon: float = -1,
           week: int = -1, overlap: float = 0.0, sensitivity: float = 1.0) -> str:
    """INDIR is the folder above the file's folder, FOLDER the file's folder (BNA's split);
    DURATION is end - start; lat and lon with 4 decimals."""
    folder, name = os.path.split(audio_path)
    parent, folder_name = os.path.split(folder)
    rows = [HEADER]
    for d in detections:
        sci, common = split_label(d.label)
        start = bna_time(d.start)
        duration = float(bna_time(d.end)) - float(start)
        rows.append(f"{parent.rstrip('/')},{folder_name},{name},{start},{duration},{sci},"
                    f"{common},{d.confidence:.4f},{lat:.4f},{lon:.4f},{week},{overlap},"
                    f"{sensitivity}\n")
    return "".join(rows)
