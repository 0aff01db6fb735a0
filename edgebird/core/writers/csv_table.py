"""CSV table (``<stem>.BirdNET.results.csv``), with optional additional columns."""

from __future__ import annotations

from edgebird.core.scores import Detection
from edgebird.core.writers import bna_time, split_label

HEADER = "Start (s),End (s),Scientific name,Common name,Confidence,File"
SUFFIX = ".BirdNET.results.csv"
#: BNA's additional columns, in its order.
ADDITIONAL = ("lat", "lon", "week", "overlap", "sensitivity", "min_conf", "species_list",
              "model")


def render(detections: list[Detection], audio_path: str,
           extra: dict[str, object] | None = None) -> str:
    """``extra`` maps additional column names (from ``ADDITIONAL``) to their value."""
    unknown = set(extra or {}) - set(ADDITIONAL)
    if unknown:
        raise ValueError(f"unknown additional columns: {', '.join(sorted(unknown))}")
    extra = {k: extra[k] for k in ADDITIONAL if extra and k in extra}
    tail = "," + ",".join(str(v) for v in extra.values()) if extra else ""
    lines = [HEADER + ("," + ",".join(extra) if extra else "") + "\n"]
    for d in detections:
        sci, common = split_label(d.label)
        lines.append(f"{bna_time(d.start)},{bna_time(d.end)},{sci},{common},"
                     f"{d.confidence:.4f},{audio_path}{tail}\n")
    return "".join(lines)
