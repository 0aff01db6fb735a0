"""R table (``<stem>.BirdNET.results.r.csv``): BirdNET-Analyzer 1.x's format for R users.

BNA 2.x dropped it (the code is commented out in 2.4.0); scripts written for it still exist,
so edgebird keeps writing it byte-for-byte as BNA 1.x did. ``sensitivity`` is the value the
user gave (1.x wrote the same number after undoing its internal inversion).
"""

from __future__ import annotations

from edgebird.core.scores import DEFAULT_MIN_CONF, Detection
from edgebird.core.writers import bna_time, split_label

HEADER = ("filepath,start,end,scientific_name,common_name,confidence,lat,lon,week,overlap,"
          "sensitivity,min_conf,species_list,model\n")
SUFFIX = ".BirdNET.results.r.csv"


def render(detections: list[Detection], audio_path: str, lat: float = -1, lon: float = -1,
           week: int = -1, overlap: float = 0.0, sensitivity: float = 1.0,
           min_conf: float = DEFAULT_MIN_CONF, species_list: str = "", model: str = "") -> str:
    rows = [HEADER]
    for d in detections:
        sci, common = split_label(d.label)
        rows.append(f"{audio_path},{bna_time(d.start)},{bna_time(d.end)},{sci},{common},"
                    f"{d.confidence:.4f},{lat:.4f},{lon:.4f},{week},{overlap},{sensitivity},"
                    f"{min_conf},{species_list},{model}\n")
    return "".join(rows)
