"""The raw archive: FLAC files of what the recorder heard, one per period, for re-analysis.

Files are named after the UTC time of their first sample (``20260601T043000Z.flac``, to the
second, rounded down) and rotate at period boundaries counted from 00:00 UTC, so an hourly
archive starts its files on the hour. A file is written as ``<name>.flac.part`` and renamed
when its period (or its stream, or its stretch of the schedule) ends: a power cut leaves at
most the open file as ``.part``, closed files are never touched again. At start, a ``.part``
left behind is salvaged: what decodes of it becomes its ``.flac``, the rest is dropped.

Retention: ``max_gb`` and ``max_days`` (either, both or none) delete the oldest closed files
when a file closes; the disk guard (``Recorder._room``) also takes the oldest archive file
before any clip when the disk is low. Ages are read from the names, not from file times, so a
copied card keeps its dates.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from edgebird.core.files import atomic_path

log = logging.getLogger("edgebird.recorder")
MODES = ("scheduled", "all")
STAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class ArchiveSettings:
    """``[archive]`` of the config; each default here once."""

    enabled: bool = False
    mode: str = "scheduled"  # scheduled: only audio the schedule scores; all: everything heard
    period_s: float = 3600.0
    max_gb: float | None = None
    max_days: float | None = None


def file_name(t: float) -> str:
    """The archive name of a file whose first sample is at UTC epoch ``t``."""
    return dt.datetime.fromtimestamp(int(t // 1), dt.timezone.utc).strftime(STAMP) + ".flac"


def start_of(path: Path) -> float | None:
    """UTC epoch a name says its file starts at (``None`` for a name that is not one)."""
    try:
        stem = path.name.split(".", 1)[0].split("-", 1)[0]
        return dt.datetime.strptime(stem, STAMP).replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        return None


def _salvage(part: Path) -> Path | None:
    """What decodes of a ``.part`` a power cut left becomes its ``.flac``; the rest is lost."""
    dest = part.with_name(part.name[:-len(".part")])
    blocks = []
    try:
        with sf.SoundFile(str(part)) as f:
            rate = f.samplerate
            while True:
                block = f.read(65536, dtype="float32")
                if not len(block):
                    break
                blocks.append(block)
    except RuntimeError:  # soundfile's errors (LibsndfileError is one)
        pass  # decoded up to the damage
    if blocks:
        with atomic_path(dest) as tmp:
            sf.write(tmp, np.concatenate(blocks), rate, format="FLAC", subtype="PCM_16")
    part.unlink(missing_ok=True)
    return dest if blocks else None


class Archive:
    """The archive folder: the open file, the closed ones (name -> bytes) and retention.

    ``room()`` is the recorder's disk guard, asked before a file is opened: ``False`` (disk
    low, nothing left to delete) pauses the archive until there is room again."""

    def __init__(self, folder: Path, settings: ArchiveSettings, rate: int,
                 room: Callable[[], bool] = lambda: True):
        self.folder, self.settings, self.rate, self.room = folder, settings, rate, room
        folder.mkdir(parents=True, exist_ok=True)
        for part in sorted(folder.glob("*.flac.part")):
            got = _salvage(part)
            log.warning("archive: %s was left open (power cut?): %s", part.name,
                        f"salvaged as {got.name}" if got else "nothing decodable, removed")
        self.files: dict[str, int] = {p.name: p.stat().st_size
                                      for p in sorted(folder.glob("*.flac"))
                                      if start_of(p) is not None}
        self.deleted = 0
        self.paused = False
        self._open: sf.SoundFile | None = None
        self._open_name = ""
        self._period_end = 0.0
        self._next_t: float | None = None  # where the open file's last sample ends
        self._now = 0.0

    # -- writing ------------------------------------------------------------------------
    def feed(self, samples: np.ndarray, t0: float, active: bool) -> None:
        """Samples starting at UTC epoch ``t0``; ``active``: the schedule scores them. Split
        at period boundaries; a gap (schedule off, a new stream) closes the open file."""
        self._now = max(self._now, t0 + len(samples) / self.rate)
        if self.settings.mode == "scheduled" and not active:
            self.close()
            return
        if self._open is not None and self._next_t is not None and \
                abs(t0 - self._next_t) > 1.0 / self.rate:
            self.close()  # not contiguous with what the file holds
        while len(samples):
            if self._open is None and not self._start(t0):
                return
            room = int(round((self._period_end - t0) * self.rate))
            n = max(1, min(len(samples), room))
            self._open.write(samples[:n])
            samples, t0 = samples[n:], t0 + n / self.rate
            self._next_t = t0
            if t0 >= self._period_end - 0.5 / self.rate:
                self.close()
        if self._open is not None:
            self._open.flush()  # a power cut loses only what came after this

    def _start(self, t0: float) -> bool:
        if not self.room():
            if not self.paused:
                log.warning("archive: disk low and nothing left to delete: paused")
            self.paused = True
            return False
        self.paused = False
        name = file_name(t0)
        k = 2
        while name in self.files or (self.folder / (name + ".part")).exists():
            name = f"{file_name(t0)[:-5]}-{k}.flac"  # two starts within one second
            k += 1
        period = self.settings.period_s
        self._period_end = (t0 // period + 1) * period
        self._open_name = name
        self._open = sf.SoundFile(str(self.folder / (name + ".part")), "w", self.rate, 1,
                                  format="FLAC", subtype="PCM_16")
        return True

    def close(self) -> None:
        """Close and publish the open file (rename from ``.part``), then apply retention."""
        if self._open is None:
            return
        self._open.close()
        self._open = None
        part = self.folder / (self._open_name + ".part")
        dest = self.folder / self._open_name
        os.replace(part, dest)
        self.files[dest.name] = dest.stat().st_size
        self._next_t = None
        self.retain()

    # -- retention ------------------------------------------------------------------------
    def retain(self) -> None:
        """Delete the oldest closed files beyond ``max_days`` (by name, against the newest
        audio fed) and while the archive is larger than ``max_gb``."""
        s = self.settings
        if s.max_days is not None:
            cutoff = self._now - s.max_days * 86400
            for name in sorted(self.files):
                start = start_of(Path(name))
                if start is None or start >= cutoff:
                    break
                self._delete(name)
        if s.max_gb is not None:
            while self.files and sum(self.files.values()) > s.max_gb * 1e9:
                self._delete(min(self.files))

    def delete_oldest(self) -> bool:
        """For the disk guard: remove the oldest closed file; ``False`` when there is none."""
        if not self.files:
            return False
        self._delete(min(self.files))
        return True

    def _delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        self.files.pop(name, None)
        self.deleted += 1

    def health(self) -> dict:
        names = sorted(self.files)
        return {"mode": self.settings.mode, "period_s": self.settings.period_s,
                "files": len(names), "size_mb": round(sum(self.files.values()) / 1e6, 1),
                "oldest": names[0] if names else None, "newest": names[-1] if names else None,
                "open": self._open_name if self._open is not None else None,
                "deleted": self.deleted, "paused": self.paused}
