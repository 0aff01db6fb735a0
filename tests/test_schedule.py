"""The recorder's schedule and clock with injected clocks (no sleeping): duty cycle, daily and
sun-relative windows (polar night, past midnight), bad [schedule] values refused at start,
NTP and jump flags per row, and the migration of a database from before the flag."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest
from edgebird.export.config import ConfigError, load_config
from edgebird.export.recorder import Database, Recorder
from edgebird.export.schedule import UTC, ClockCheck, Schedule, parse_windows, utc_text
from test_recorder import config, recording, standalone  # noqa: F401 - the model fixture

BERLIN = ZoneInfo("Europe/Berlin")


def schedule_config(tmp, model, audio, **keys):
    """test_recorder's config with keys set by whole line (empty template values included).

    A key in more than one section is named ``section__key`` (``archive__enabled``)."""
    path = config(tmp, model, audio, min_conf=keys.pop("min_conf", 0.3))
    text = path.read_text()
    for name, value in keys.items():
        section, _, key = name.rpartition("__")
        head, body = "", text
        if section:  # only the lines from "[section]" to the next header
            start = text.index(f"[{section}]")
            end = text.find("\n[", start + 1)
            end = len(text) if end < 0 else end
            head, body, tail = text[:start], text[start:end], text[end:]
        else:
            tail = ""
        body, n = re.subn(rf"(?m)^{key} =.*$", f"{key} = {value}", body)
        assert n == 1, name
        text = head + body + tail
    path.write_text(text)
    return path


def epoch(*args, tz=UTC) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


def test_duty_cycle_60_on_240_off_over_an_hour():
    s = Schedule(60, 240)
    t0 = epoch(2026, 5, 1, 6, 0)
    on = [t for t in range(int(t0), int(t0) + 3600, 3) if s.active(t)]
    assert len(on) == 12 * 20  # 12 cycles of 60 s in 3-s windows
    assert s.active(t0) and s.active(t0 + 59.9) and not s.active(t0 + 60)
    assert s.next_window(t0 + 61) == (t0 + 300, t0 + 360)
    assert s.next_window(t0 + 10) == (t0 + 10, t0 + 60)  # inside: now until its end
    assert Schedule().always and Schedule().next_window(t0) is None


def test_daily_window_in_local_time_and_past_midnight():
    s = Schedule(windows=parse_windows("05:00..09:00, 22:00..02:00"), timezone=BERLIN)
    assert s.active(epoch(2026, 5, 1, 5, 0, tz=BERLIN))
    assert not s.active(epoch(2026, 5, 1, 4, 59, tz=BERLIN))
    assert not s.active(epoch(2026, 5, 1, 9, 0, tz=BERLIN))
    assert s.active(epoch(2026, 5, 1, 1, 30, tz=BERLIN))  # the previous evening's window
    assert s.active(epoch(2026, 5, 1, 23, 0, tz=BERLIN))
    start, end = s.next_window(epoch(2026, 5, 1, 12, 0, tz=BERLIN))
    assert (start, end) == (epoch(2026, 5, 1, 22, 0, tz=BERLIN),
                            epoch(2026, 5, 2, 2, 0, tz=BERLIN))
    # the day the clocks go forward (29 March 2026 in Berlin): 05:00 local is 03:00 UTC
    assert s.next_window(epoch(2026, 3, 29, 3, 0))[0] == epoch(2026, 3, 29, 3, 0)


def test_sun_windows_follow_the_season_and_vanish_in_polar_night():
    pytest.importorskip("astral")
    s = Schedule(windows=parse_windows("sunrise-30..sunrise+120"), timezone=BERLIN,
                 latitude=47.6, longitude=9.4)
    june = s.next_window(epoch(2026, 6, 21, 0, 0, tz=BERLIN))
    dec = s.next_window(epoch(2026, 12, 21, 0, 0, tz=BERLIN))
    # sunrise at Lake Constance: about 05:20 local in June, about 08:10 in December
    assert dt.datetime.fromtimestamp(june[0], BERLIN).hour == 4
    assert dt.datetime.fromtimestamp(dec[0], BERLIN).hour == 7
    assert june[1] - june[0] == dec[1] - dec[0] == 150 * 60
    # Tromsø has no sunrise in mid-December: no window that day, the next one in late January
    polar = Schedule(windows=parse_windows("sunrise..sunset"), latitude=69.65,
                     longitude=18.96)
    assert polar.next_window(epoch(2026, 12, 15, 12, 0)) is None  # not within 8 days
    assert not polar.active(epoch(2026, 12, 15, 12, 0))


@pytest.mark.parametrize(("key", "value", "message"), [
    ("windows", "05:00-09:00", "start..end"),
    ("windows", "25:00..26:00", "not a time of day"),
    ("windows", "sunrise+900..sunset", "at most 720"),
    ("windows", "noon..sunset", "not HH:MM"),
    ("windows", "sunrise..sunset", "set latitude and longitude"),
    ("duty_off", "-5", "duty_off"),
    ("duty_on", "0", "duty_on"),
    ("timezone", "Mars/Olympus", "not a known time zone"),
    ("timezone", "../../etc/passwd", "not a known time zone"),
    ("latitude", "nan", "finite"),
    ("latitude", "91", "latitude"),
    ("jump_s", "0", "jump_s"),
    ("check_ntp", "maybe", "yes or no"),
])
def test_bad_schedule_stops_at_start(tmp_path, standalone, key, value, message):  # noqa: F811
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    extra = {"longitude": "9.4"} if key == "latitude" else {}  # read only as a pair
    path = schedule_config(tmp_path, standalone, audio, **{key: value}, **extra)
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    if key == "windows" and value == "05:00-09:00":  # the command line: exit 2, no traceback
        r = subprocess.run([sys.executable, "-m", "edgebird.export.recorder", "--config",
                            str(path)], capture_output=True, text=True)
        assert r.returncode == 2 and "start..end" in r.stderr and "Traceback" not in r.stderr


class FakeClock:
    """A wall and a monotonic clock the test moves by hand."""

    def __init__(self, wall: float):
        self.w, self.m = wall, 1000.0

    def advance(self, s: float) -> None:
        self.w += s
        self.m += s


def test_clock_jump_and_sync_state_are_flagged():
    fake = FakeClock(epoch(2026, 5, 1))
    synced = [True]
    check = ClockCheck(2.0, True, lambda: fake.w, lambda: fake.m, lambda: synced[0],
                       probe_every=0)
    assert check.start_stream() == fake.w and check.check() == "synced"
    fake.advance(30)
    fake.w += 1.5  # NTP slewing within the bound: not a jump
    assert check.check() == "synced" and check.jumps == 0
    fake.w -= 3600  # the wall clock steps back an hour (a Pi without RTC fixed late)
    assert check.check() == "jumped" and check.jumps == 1
    assert check.last_jump["step_s"] == -3600
    synced[0] = False
    assert check.check() == "jumped"  # the worst of the stream is kept
    check.start_stream()  # a new stream: its own flag
    assert check.check() == "unsynced" and not check.health()["trusted"]
    synced[0] = None
    check.start_stream()
    assert check.check() == "unknown"


def test_schedule_and_clock_in_a_replay(tmp_path, standalone):  # noqa: F811
    """A 30-s replay anchored at an injected UTC time with a 6-s on / 6-s off cycle scores
    only the windows that start in an on phase; every row carries the clock flag; health
    shows the schedule and the next window."""
    audio = recording(tmp_path / "in" / "rec.wav", 30.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, duty_on="6",
                                      duty_off="6", min_conf="0.0"))
    start = epoch(2026, 5, 1, 6, 0)
    fake = FakeClock(start)
    clock = ClockCheck(2.0, True, lambda: fake.w, lambda: fake.m, lambda: False)
    rec = Recorder(cfg, clock=clock)
    assert rec.run() == 0
    with sqlite3.connect(cfg.data_dir / "detections.sqlite") as c:
        rows = c.execute("SELECT time_utc, start_s, clock FROM detections").fetchall()
    starts = sorted({r[1] for r in rows})
    assert starts == [0.0, 3.0, 12.0, 15.0, 24.0, 27.0]  # 0-6, 12-18, 24-30 s are on
    assert rows[0][0].startswith(utc_text(start)[:19])  # anchored at the injected start
    assert {r[2] for r in rows} == {"unsynced"}
    health = json.loads((cfg.data_dir / "health.json").read_text())
    assert health["windows"] == 6 and health["windows_skipped"] == 4
    assert health["schedule"]["description"] == "duty cycle 6 s on, 6 s off"
    assert health["schedule"]["next_window"]["start_utc"] == utc_text(start)
    assert health["clock"]["synchronized"] is False and not health["clock"]["trusted"]


def test_old_database_gets_the_clock_column_and_keeps_its_rows(tmp_path):
    path = tmp_path / "detections.sqlite"
    with sqlite3.connect(path) as c:  # the schema before the clock flag
        c.executescript("""
        CREATE TABLE detections (id INTEGER PRIMARY KEY, time_utc TEXT NOT NULL,
            source TEXT NOT NULL, start_s REAL NOT NULL, end_s REAL NOT NULL,
            species TEXT NOT NULL, confidence REAL NOT NULL, model TEXT NOT NULL,
            model_sha256 TEXT NOT NULL, clip TEXT, UNIQUE (source, start_s, species));
        INSERT INTO detections VALUES (1, '2025-05-01T06:00:00.000000Z', 'a.wav', 0, 3,
            'X_Y', 0.9, 'm.tflite', 'abc', NULL);""")
    c.close()
    db = Database(path)
    assert db.add([("2026-05-01T06:00:00.000000Z", "b.wav", 0.0, 3.0, "X_Y", 0.8,
                    "m.tflite", "abc", None, "synced")]) == [True]
    db.close()
    Database(path).close()  # opening again migrates nothing twice
    with sqlite3.connect(path) as c:
        got = c.execute("SELECT source, clock FROM detections ORDER BY id").fetchall()
    assert got == [("a.wav", None), ("b.wav", "synced")]


def test_a_clock_step_during_a_replay_flags_the_rows_after_it(tmp_path, standalone):  # noqa: F811
    """The wall clock steps back an hour at the third window (NTP fixing a Pi that booted
    at its last shutdown time): rows before it stay ``synced``, the rest say ``jumped``, the
    times stay on the sample clock (no row moves back an hour) and health counts the jump."""
    audio = recording(tmp_path / "in" / "rec.wav", 18.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, min_conf="0.0"))
    start = epoch(2026, 5, 1, 6, 0)
    checks = [0]

    def wall() -> float:
        return start - (3600 if checks[0] > 4 else 0)  # from the third window

    def mono() -> float:
        checks[0] += 1
        return 1000.0

    clock = ClockCheck(2.0, True, wall, mono, lambda: True)
    assert Recorder(cfg, clock=clock).run() == 0
    with sqlite3.connect(cfg.data_dir / "detections.sqlite") as c:
        rows = c.execute("SELECT start_s, time_utc, clock FROM detections "
                         "ORDER BY start_s").fetchall()
    flags = {s: f for s, _, f in rows}
    assert [flags[s] for s in sorted(flags)] == ["synced"] * 2 + ["jumped"] * 4
    assert all(t.startswith("2026-05-01T06:00:") for _, t, _ in rows)
    health = json.loads((cfg.data_dir / "health.json").read_text())
    assert health["clock"]["jumps"] == 1 and health["clock"]["last_jump"]["step_s"] == -3600


def test_a_sun_schedule_loads_with_its_place(tmp_path, standalone):  # noqa: F811
    pytest.importorskip("astral")
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio,
                                      windows="sunrise-30..sunrise+120, 20:00..22:00",
                                      latitude="47.6", longitude="9.4",
                                      timezone="Europe/Berlin"))
    assert cfg.schedule.uses_sun and cfg.schedule.latitude == 47.6
    assert "sunrise-30min..sunrise+120min" in cfg.schedule.describe()
