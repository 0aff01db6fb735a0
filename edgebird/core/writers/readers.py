"""Read back every table ``analyze`` writes (and BirdNET-Analyzer's), per file or combined.

The format is told by the first line, as BNA's ``segments`` does: ``Selection`` → Raven,
``INDIR`` → Kaleidoscope, ``Start (s)`` → CSV, ``filepath`` → R, anything else → Audacity
labels (no header). Raven rows are read through ``File Offset (s)``, so a combined table
(whose begin/end times are shifted by earlier files) gives each detection's time in its own
file. BNA writes paths into CSV rows unquoted; a path holding commas is put back together
from the surplus fields.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgebird.core.scores import Detection
from edgebird.core.writers.formats import FORMATS

#: A table's format by the first column of its header (BNA's test, case-insensitive).
RTYPE_BY_HEADER = tuple((f.header.split(f.sep)[0].lower(), f.name)
                        for f in FORMATS.values() if f.header)


def detect_rtype(first_line: str) -> str:
    """The format whose header ``first_line`` starts with; a table without one of the known
    headers is taken for Audacity labels (which have no header)."""
    low = first_line.lower()
    for prefix, rtype in RTYPE_BY_HEADER:
        if low.startswith(prefix):
            return rtype
    return "audacity"


def _label(sci: str, common: str) -> str:
    return sci if sci == common else f"{sci}_{common}"


def _fields(line: str, header: list[str], sep: str, free: str) -> dict[str, str]:
    """Split a row; surplus fields (commas inside a path) go back into column ``free``."""
    cols = line.rstrip("\r\n").split(sep)
    extra = len(cols) - len(header)
    if extra > 0 and free in header:
        i = header.index(free)
        cols[i:i + extra + 1] = [sep.join(cols[i:i + extra + 1])]
    if len(cols) < len(header):
        raise ValueError(f"{len(cols)} fields where the header has {len(header)}")
    return dict(zip(header, cols))  # noqa: B905 - Python 3.9 on the Pi has no strict=


def read_results(path: str | Path) -> tuple[str, list[Detection]]:
    """``(rtype, detections)`` of a result table; ``nocall`` rows are skipped. Detections of
    an Audacity file carry no audio path (``file=""``): the caller knows it from the name.
    Raises ValueError (with the line number) for a table that cannot be parsed."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines:
        return "audacity", []
    rtype = detect_rtype(lines[0])
    out: list[Detection] = []
    sep = FORMATS[rtype].sep
    header = lines[0].rstrip("\r\n").split(sep) if rtype != "audacity" else []
    body = lines if rtype == "audacity" else lines[1:]
    first = 1 if rtype == "audacity" else 2
    for n, line in enumerate(body, start=first):
        if not line.strip():
            continue
        try:
            det = _row(rtype, line, header)
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"{path}, line {n}: cannot read this {rtype} row ({exc})") from None
        if det is not None:
            out.append(det)
    return rtype, out


def _row(rtype: str, line: str, header: list[str]) -> Detection | None:
    if rtype == "table":
        f = _fields(line, header, "\t", "Begin Path")
        if f["Common Name"] == "nocall":
            return None
        code, common = f["Species Code"], f["Common Name"]
        label = code if "_" in code else common
        start = float(f["File Offset (s)"])
        length = float(f["End Time (s)"]) - float(f["Begin Time (s)"])
        return Detection(f["Begin Path"], start, round(start + length, 6), label,
                         float(f["Confidence"]))
    if rtype == "audacity":
        start, end, name, conf = line.rstrip("\r\n").split("\t")
        return Detection("", float(start), float(end), name.replace(", ", "_"), float(conf))
    if rtype == "csv":
        f = _fields(line, header, ",", "File")
        return Detection(f["File"], float(f["Start (s)"]), float(f["End (s)"]),
                         _label(f["Scientific name"], f["Common name"]), float(f["Confidence"]))
    if rtype == "kaleidoscope":
        f = _fields(line, header, ",", "INDIR")
        start = float(f["OFFSET"])
        audio = _kaleidoscope_path(line, header, f)
        return Detection(audio, start, round(start + float(f["DURATION"]), 6),
                         _label(f["scientific_name"], f["common_name"]),
                         float(f["confidence"]))
    f = _fields(line, header, ",", "filepath")  # r
    return Detection(f["filepath"], float(f["start"]), float(f["end"]),
                     _label(f["scientific_name"], f["common_name"]), float(f["confidence"]))


def _kaleidoscope_path(line: str, header: list[str], f: dict[str, str]) -> str:
    """INDIR, FOLDER and IN FILE are three unquoted columns; with commas in the path the split
    is ambiguous, so the split naming an existing file wins (else the commas go to INDIR)."""
    default = os.path.join(f["INDIR"], f["FOLDER"], f["IN FILE"])
    cols = line.rstrip("\r\n").split(",")
    k = 3 + len(cols) - len(header)
    if k == 3:
        return default
    head = cols[:k]
    for i in range(1, k - 1):
        for j in range(i + 1, k):
            cand = os.path.join(",".join(head[:i]), ",".join(head[i:j]), ",".join(head[j:]))
            if os.path.isfile(cand):
                return cand
    return default
