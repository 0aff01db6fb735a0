"""``edgebird collect``: a field recorder's data folder (copied off its card) into the desktop
tools. The database is opened read-only (``mode=ro``), so a card is never modified.

- ``tables/<day>.BirdNET.selection.table.txt`` and ``.results.csv`` per UTC day, the
  recorder's own day tables (``core.writers.daily``);
- ``clips/<Label>/<conf>_<id>_<source>_<start>s_<end>s.flac``: one folder per label, names the
  Review tab sorts by confidence and ``train`` reads as class folders;
- ``archive/``: the raw archive's FLAC files (copied, or linked with ``link=True``), input for
  ``edgebird analyze``.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edgebird.core.files import atomic_write_bytes
from edgebird.core.writers.daily import day_tables

RATE = 48000  # the recorder's sample rate


class CollectError(ValueError):
    """Not a recorder's data folder, or an unreadable database: one line to act on."""


@dataclass(frozen=True)
class Collected:
    days: int
    rows: int
    clips: int
    clips_missing: int
    archive: int


def _safe(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", Path(text).stem).strip("_") or "rec"


def open_readonly(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise CollectError(f"{db.parent}: no detections.sqlite here: give the recorder's "
                           "data folder (data_dir in its config.ini)")
    uri = db.resolve().as_uri()
    try:
        try:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True)
            conn.execute("SELECT 1 FROM detections LIMIT 1")
        except sqlite3.OperationalError:
            if db.with_name(db.name + "-wal").exists():
                raise
            # a WAL database on a read-only card without its -shm file: with no WAL left
            # to apply, the file alone is the whole database
            conn = sqlite3.connect(f"{uri}?immutable=1", uri=True)
            conn.execute("SELECT 1 FROM detections LIMIT 1")
    except sqlite3.Error as exc:
        raise CollectError(f"{db}: not a readable recorder database ({exc}): copy the "
                           "card's data folder to a disk and collect from the copy") from None
    return conn


def collect(data: str | os.PathLike, out: str | os.PathLike, station: str = "edgebird",
            link: bool = False) -> Collected:
    data, out = Path(data), Path(out)
    conn = open_readonly(data / "detections.sqlite")
    try:
        rows = conn.execute("SELECT id, time_utc, source, start_s, end_s, species, "
                            "confidence, clip FROM detections ORDER BY time_utc, species"
                            ).fetchall()
    finally:
        conn.close()
    by_day: dict[str, list[tuple]] = {}
    for _, when, source, start, end, species, conf, _ in rows:
        by_day.setdefault(when[:10], []).append((when, source, start, end, species, conf))
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for day, day_rows in by_day.items():
        for suffix, text in day_tables(day_rows, station, RATE).items():
            atomic_write_bytes(out / "tables" / f"{day}{suffix}", text.encode("utf-8"))
    clips = missing = 0
    for rid, _, source, start, end, species, conf, clip in rows:
        if not clip:
            continue
        src = data / clip
        if not src.is_file():  # deleted by the disk guard after its row was written
            missing += 1
            continue
        dest = out / "clips" / species.replace("/", "_") / \
            f"{conf:.3f}_{rid}_{_safe(source)}_{start:.2f}s_{end:.2f}s{src.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copy2(src, dest)
        clips += 1
    archived = 0
    for f in sorted((data / "archive").glob("*.flac")) if (data / "archive").is_dir() else []:
        dest = out / "archive" / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            if link:
                dest.symlink_to(f.resolve())
            else:
                shutil.copy2(f, dest)
        archived += 1
    return Collected(len(by_day), len(rows), clips, missing, archived)
