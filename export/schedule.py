"""When the recorder detects (duty cycle, daily and sun-relative windows) and whether its
clock can be trusted (NTP sync, jumps of the wall clock against the monotonic clock).

Both take times as plain UTC epoch seconds and their clocks as injectable callables, so
tests drive a whole day or a clock jump without sleeping. Sunrise and sunset come from
astral (pure Python), imported only when a window uses them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

UTC = dt.timezone.utc
#: One end of a daily window: ``HH:MM`` or ``sunrise``/``sunset`` with an offset in minutes.
_END = re.compile(r"^\s*(?:(?P<hh>\d{1,2}):(?P<mm>\d{2})|(?P<sun>sunrise|sunset)"
                  r"\s*(?:(?P<sign>[+-])\s*(?P<off>\d+(?:\.\d+)?))?)\s*$", re.IGNORECASE)
#: How far ahead ``next_window`` looks (a polar night can have no sun window for months).
LOOKAHEAD_DAYS = 8


class ScheduleError(ValueError):
    """A schedule the recorder cannot follow: the message says which key and what to write."""


@dataclass(frozen=True)
class End:
    """One end of a window: minutes after local midnight, or after/before a sun event."""

    minutes: float
    sun: str = ""  # "", "sunrise" or "sunset"

    def text(self) -> str:
        if not self.sun:
            return f"{int(self.minutes) // 60:02d}:{int(self.minutes) % 60:02d}"
        return self.sun + (f"{self.minutes:+g}min" if self.minutes else "")


def parse_end(text: str) -> End:
    m = _END.match(text)
    if not m:
        raise ScheduleError(f"{text.strip()!r} is not HH:MM, sunrise or sunset (optionally "
                            "with +/- minutes, e.g. sunrise-30)")
    if m["sun"]:
        off = float(m["off"] or 0) * (-1 if m["sign"] == "-" else 1)
        if abs(off) > 720:
            raise ScheduleError(f"{text.strip()!r}: the offset must be at most 720 minutes")
        return End(off, m["sun"].lower())
    hh, mm = int(m["hh"]), int(m["mm"])
    if hh > 24 or mm > 59 or (hh == 24 and mm):
        raise ScheduleError(f"{text.strip()!r} is not a time of day (00:00-24:00)")
    return End(hh * 60.0 + mm)


def parse_windows(text: str) -> tuple[tuple[End, End], ...]:
    """``05:00..09:00, sunset-30..sunset+90``: comma-separated ``start..end`` pairs."""
    out = []
    for part in (p for p in text.split(",") if p.strip()):
        if ".." not in part:
            raise ScheduleError(f"{part.strip()!r}: write a window as start..end, "
                                "e.g. 05:00..09:00 or sunrise-30..sunrise+120")
        a, b = part.split("..", 1)
        out.append((parse_end(a), parse_end(b)))
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """Detect while inside one of the daily ``windows`` (none = all day) *and* in the on part
    of the duty cycle. The cycle is anchored at the UTC epoch, so a restart keeps its phase
    and a period that divides a day starts at every UTC midnight."""

    duty_on: float = 0.0  # seconds; duty_off 0 = no duty cycle
    duty_off: float = 0.0
    windows: tuple[tuple[End, End], ...] = ()
    timezone: dt.tzinfo = UTC
    latitude: float | None = None
    longitude: float | None = None

    @property
    def always(self) -> bool:
        return not self.windows and not self.duty_off

    @property
    def uses_sun(self) -> bool:
        return any(e.sun for w in self.windows for e in w)

    def describe(self) -> str:
        parts = []
        if self.windows:
            parts.append("windows " + ", ".join(f"{a.text()}..{b.text()}"
                                                for a, b in self.windows)
                         + f" ({self.timezone})")
        if self.duty_off:
            parts.append(f"duty cycle {self.duty_on:g} s on, {self.duty_off:g} s off")
        return "; ".join(parts) or "always"

    # -- windows as UTC intervals -----------------------------------------------------------
    def _sun(self, day: dt.date, event: str) -> dt.datetime | None:
        """The sun event of a local day at the configured place; None when the sun does not
        rise or set that day (polar day or night): that window is absent that day."""
        from astral import Observer
        from astral.sun import sunrise, sunset

        fn = sunrise if event == "sunrise" else sunset
        try:
            return fn(Observer(self.latitude, self.longitude), date=day, tzinfo=self.timezone)
        except ValueError:
            return None

    def _at(self, day: dt.date, end: End) -> dt.datetime | None:
        if end.sun:
            base = self._sun(day, end.sun)
            return None if base is None else base + dt.timedelta(minutes=end.minutes)
        midnight = dt.datetime.combine(day, dt.time(0), self.timezone)
        return midnight + dt.timedelta(minutes=end.minutes)

    def intervals(self, first: dt.date, last: dt.date) -> list[tuple[float, float]]:
        """The windows of local days ``first``..``last`` as sorted, merged UTC epoch spans;
        a window whose end is not after its start runs into the next day (22:00..02:00)."""
        spans = []
        day = first
        while day <= last:
            spans += _day_spans(self, day)
            day += dt.timedelta(days=1)
        merged: list[tuple[float, float]] = []
        for s, e in sorted(spans):
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def _local_day(self, t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, self.timezone).date()

    def _duty(self, t: float) -> bool:
        return not self.duty_off or (t % (self.duty_on + self.duty_off)) < self.duty_on

    def active(self, t: float) -> bool:
        """Whether a window starting at UTC epoch ``t`` is scored."""
        if not self._duty(t):
            return False
        if not self.windows:
            return True
        day = self._local_day(t)
        spans = self.intervals(day - dt.timedelta(days=1), day + dt.timedelta(days=1))
        return any(s <= t < e for s, e in spans)

    def next_window(self, t: float) -> tuple[float, float] | None:
        """The current or next span of detection at or after ``t`` (UTC epoch start, end);
        None when always on, or when no window falls in the next ``LOOKAHEAD_DAYS``."""
        if self.always:
            return None
        if self.windows:
            day = self._local_day(t)
            spans = self.intervals(day - dt.timedelta(days=1),
                                   day + dt.timedelta(days=LOOKAHEAD_DAYS))
        else:
            spans = [(t, float("inf"))]
        period = self.duty_on + self.duty_off
        for s, e in spans:
            if e <= t:
                continue
            start = max(s, t)
            if self.duty_off:
                phase = start % period
                if phase >= self.duty_on:
                    start += period - phase
                end = min(e, start - start % period + self.duty_on)
            else:
                end = e
            if start < e:
                return start, end
        return None


@functools.lru_cache(maxsize=64)
def _day_spans(schedule: Schedule, day: dt.date) -> tuple[tuple[float, float], ...]:
    """One local day's windows as UTC epoch spans, cached: ``active`` runs every window and
    the sun's times change only with the day."""
    spans = []
    for a, b in schedule.windows:
        start, end = schedule._at(day, a), schedule._at(day, b)
        if start is None or end is None:
            continue
        if end <= start:
            end += dt.timedelta(days=1)
        spans.append((start.timestamp(), end.timestamp()))
    return tuple(spans)


def utc_text(t: float) -> str:
    return dt.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the clock --------------------------------------------------------------------------------
def ntp_synchronized(timeout: float = 2.0) -> bool | None:
    """systemd's view (``timedatectl show -p NTPSynchronized``): True, False, or None where
    it cannot say (no systemd, no timedatectl, a container)."""
    try:
        r = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                           capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    value = r.stdout.strip().lower()
    return {"yes": True, "no": False}.get(value) if r.returncode == 0 else None


#: The flag each detection row keeps, the worst the clock has been during its stream.
FLAGS = ("synced", "unknown", "unsynced", "jumped")


class ClockCheck:
    """Watches the wall clock the detection times are anchored to. A stream's times are its
    start (wall clock, read once) plus its sample count, so a later jump does not move them,
    but it shows the anchor was wrong: a stream's rows from the jump on are flagged
    ``jumped`` (each row keeps the worst state seen so far in its stream). A jump is the
    wall clock moving against the monotonic clock by more than ``jump_s`` between two
    checks; an unsynchronised clock (no NTP, no RTC: a Pi boots at its last shutdown time)
    flags its rows ``unsynced``."""

    def __init__(self, jump_s: float = 2.0, check_ntp: bool = True,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic,
                 probe: Callable[[], bool | None] = ntp_synchronized,
                 probe_every: float = 300.0):
        self.jump_s, self.wall, self.mono = jump_s, wall, mono
        self.probe = probe if check_ntp else (lambda: None)
        self.probe_every = probe_every
        self.synchronized: bool | None = None
        self.jumps = 0
        self.last_jump: dict | None = None
        self._offset = wall() - mono()
        self._probed_at: float | None = None
        self._stream_flag = "synced"

    def start_stream(self) -> float:
        """A new stream's anchor (UTC epoch of its first sample) after a fresh check."""
        self._stream_flag = "synced"
        self.check()
        return self.wall()

    def check(self) -> str:
        """Look for a jump, probe the sync state now and then; the current stream's flag."""
        mono = self.mono()
        offset = self.wall() - mono
        step = offset - self._offset
        self._offset = offset
        if abs(step) > self.jump_s:
            self.jumps += 1
            self.last_jump = {"at_utc": utc_text(self.wall()), "step_s": round(step, 3)}
            self._worse("jumped")
        if self._probed_at is None or mono - self._probed_at >= self.probe_every:
            self._probed_at = mono
            self.synchronized = self.probe()
        self._worse({True: "synced", False: "unsynced", None: "unknown"}[self.synchronized])
        return self._stream_flag

    def _worse(self, flag: str) -> None:
        if FLAGS.index(flag) > FLAGS.index(self._stream_flag):
            self._stream_flag = flag

    def health(self) -> dict:
        return {"synchronized": self.synchronized, "jumps": self.jumps,
                "last_jump": self.last_jump, "flag": self._stream_flag,
                "trusted": self._stream_flag == "synced"}
