"""The recorder's raw archive: files per period named by their first sample's UTC time, a
schedule's windows only or everything, retention by size and age, salvage after a power cut,
the disk guard taking archive files before clips (never the database), and health."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from edgebird.export.archive import Archive, ArchiveSettings, file_name, start_of
from edgebird.export.config import ConfigError, load_config
from edgebird.export.recorder import Recorder
from edgebird.export.schedule import ClockCheck, Schedule, parse_windows
from test_recorder import recording, standalone  # noqa: F401 - the model fixture
from test_schedule import FakeClock, epoch, schedule_config

RATE = 100  # a day of audio at 100 Hz encodes in a second: same code path as 48 kHz


def feed_day(archive: Archive, day0: float, schedule: Schedule, hop_s: float = 3.0) -> None:
    """A generated day (noise), fed in hops as the recorder does, with the schedule's say."""
    rng = np.random.default_rng(0)
    n = int(hop_s * RATE)
    for k in range(int(86400 / hop_s)):
        t = day0 + k * hop_s
        archive.feed(rng.normal(0, 0.1, n).astype(np.float32), t, schedule.active(t))
    archive.close()


def frames(folder: Path) -> dict[str, int]:
    return {p.name: sf.info(str(p)).frames for p in sorted(folder.glob("*.flac"))}


def test_a_day_everything_gives_one_file_per_hour(tmp_path):
    day0 = epoch(2026, 6, 1)
    arch = Archive(tmp_path / "a", ArchiveSettings(True, "all", 3600.0), RATE)
    feed_day(arch, day0, Schedule(windows=parse_windows("05:00..09:00")))
    got = frames(tmp_path / "a")
    assert list(got) == [f"20260601T{h:02d}0000Z.flac" for h in range(24)]
    assert set(got.values()) == {3600 * RATE}
    assert not list((tmp_path / "a").glob("*.part"))
    h = arch.health()
    assert h["files"] == 24 and h["open"] is None and h["size_mb"] > 0


def test_a_day_scheduled_keeps_only_the_windows(tmp_path):
    """05:00..09:00 and 22:30..23:00 with 30-min files: the files start on the windows' and
    the periods' boundaries, nothing outside is archived."""
    day0 = epoch(2026, 6, 1)
    arch = Archive(tmp_path / "a", ArchiveSettings(True, "scheduled", 1800.0), RATE)
    feed_day(arch, day0, Schedule(windows=parse_windows("05:00..09:00, 22:30..23:00")))
    got = frames(tmp_path / "a")
    want = [f"20260601T{h:02d}{m}00Z.flac" for h in range(5, 9) for m in ("00", "30")]
    assert list(got) == want + ["20260601T223000Z.flac"]
    assert set(got.values()) == {1800 * RATE}
    assert start_of(Path(want[0])) == day0 + 5 * 3600


def test_retention_by_age_and_size(tmp_path):
    day0 = epoch(2026, 6, 1)
    arch = Archive(tmp_path / "a", ArchiveSettings(True, "all", 3600.0, max_days=0.25), RATE)
    feed_day(arch, day0, Schedule())
    assert list(frames(tmp_path / "a")) == [f"20260601T{h:02d}0000Z.flac"
                                            for h in range(18, 24)]  # the last 6 h
    assert arch.deleted == 18
    one = (tmp_path / "a" / "20260601T230000Z.flac").stat().st_size
    arch2 = Archive(tmp_path / "b", ArchiveSettings(True, "all", 3600.0,
                                                    max_gb=3.5 * one / 1e9), RATE)
    feed_day(arch2, day0, Schedule())
    assert len(arch2.files) == 3 and max(arch2.files) == "20260601T230000Z.flac"
    assert sum(p.stat().st_size for p in (tmp_path / "b").iterdir()) <= 3.5 * one


def test_a_power_cut_loses_only_the_open_files_tail(tmp_path):
    """The .part as a power cut leaves it (copied while open) is salvaged at the next start;
    closed files are untouched. At 8 kHz: FLAC frames hold 4096 samples, so a tail
    shorter than one is what a cut loses on top of the unflushed hop."""
    rate = 8000
    arch = Archive(tmp_path / "a", ArchiveSettings(True, "all", 60.0), rate)
    t0 = epoch(2026, 6, 1, 4, 30)
    rng = np.random.default_rng(1)
    for k in range(30):  # 90 s: one closed minute, 30 s open
        arch.feed(rng.normal(0, 0.1, 3 * rate).astype(np.float32), t0 + 3 * k, True)
    cut = tmp_path / "card"
    shutil.copytree(tmp_path / "a", cut)  # the card as the power cut left it
    arch.close()
    assert sorted(p.name for p in cut.iterdir()) == ["20260601T043000Z.flac",
                                                     "20260601T043100Z.flac.part"]
    closed = (cut / "20260601T043000Z.flac").read_bytes()
    again = Archive(cut, ArchiveSettings(True, "all", 60.0), rate)
    got = frames(cut)
    assert list(got) == ["20260601T043000Z.flac", "20260601T043100Z.flac"]
    assert got["20260601T043000Z.flac"] == 60 * rate
    assert 0 < got["20260601T043100Z.flac"] <= 30 * rate
    assert (cut / "20260601T043000Z.flac").read_bytes() == closed
    assert again.health()["files"] == 2


def test_two_starts_in_one_second_get_their_own_files(tmp_path):
    arch = Archive(tmp_path / "a", ArchiveSettings(True, "all", 60.0), RATE)
    t0 = epoch(2026, 6, 1, 4, 30)
    arch.feed(np.zeros(10, np.float32), t0, True)
    arch.close()
    arch.feed(np.zeros(10, np.float32), t0 + 0.5, True)
    arch.close()
    assert sorted(arch.files) == ["20260601T043000Z-2.flac", "20260601T043000Z.flac"]
    assert file_name(t0 + 0.99) == "20260601T043000Z.flac"


def test_replay_with_schedule_and_archive(tmp_path, standalone):  # noqa: F811
    """A 30-s replay at 06:00 UTC, 6 s on / 6 s off: the scheduled archive holds the on
    phases (6 s each, named at their starts); detections only there; health shows it."""
    audio = recording(tmp_path / "in" / "rec.wav", 30.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, duty_on="6",
                                      duty_off="6", min_conf="0.0", archive__enabled="yes",
                                      period_s="10"))
    assert cfg.archive.enabled and cfg.archive.mode == "scheduled"
    fake = FakeClock(epoch(2026, 5, 1, 6, 0))
    rec = Recorder(cfg, clock=ClockCheck(2.0, True, lambda: fake.w, lambda: fake.m,
                                         lambda: True))
    assert rec.run() == 0
    got = frames(cfg.data_dir / "archive")
    assert got == {"20260501T060000Z.flac": 6 * 48000, "20260501T060012Z.flac": 6 * 48000,
                   "20260501T060024Z.flac": 6 * 48000}
    # the archived audio is the recording's (16-bit)
    x, _ = sf.read(str(audio), dtype="float32")
    y, _ = sf.read(str(cfg.data_dir / "archive" / "20260501T060012Z.flac"), dtype="float32")
    assert np.abs(y - x[12 * 48000:18 * 48000]).max() < 1e-4
    with sqlite3.connect(cfg.data_dir / "detections.sqlite") as c:
        starts = sorted({r[0] for r in c.execute("SELECT start_s FROM detections")})
    assert starts == [0.0, 3.0, 12.0, 15.0, 24.0, 27.0]
    health = json.loads((cfg.data_dir / "health.json").read_text())
    assert health["archive"]["files"] == 3 and health["archive"]["mode"] == "scheduled"


def test_replay_archiving_everything_in_periods(tmp_path, standalone):  # noqa: F811
    audio = recording(tmp_path / "in" / "rec.wav", 25.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, archive__enabled="yes",
                                      mode="all", period_s="10", windows="07:00..08:00"))
    fake = FakeClock(epoch(2026, 5, 1, 6, 0, 5))
    rec = Recorder(cfg, clock=ClockCheck(2.0, False, lambda: fake.w, lambda: fake.m))
    assert rec.run() == 0
    # out of schedule: nothing scored, all archived; 06:00:05 to 06:00:30 in 10-s periods
    assert frames(cfg.data_dir / "archive") == {
        "20260501T060005Z.flac": 5 * 48000, "20260501T060010Z.flac": 10 * 48000,
        "20260501T060020Z.flac": 10 * 48000}
    assert rec.health["windows"] == 0


def test_full_disk_takes_archive_files_before_clips_never_the_database(tmp_path,
                                                                       standalone):  # noqa: F811
    audio = recording(tmp_path / "in" / "rec.wav", 30.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, min_conf="0.01",
                                      archive__enabled="yes", mode="all", period_s="10"))
    old_clips = cfg.data_dir / "clips" / "2020-01-01" / "X"
    old_clips.mkdir(parents=True)
    sf.write(old_clips / "old.flac", np.zeros(4800, np.float32), 48000)
    old_arch = cfg.data_dir / "archive"
    old_arch.mkdir()
    for name in ("20200101T000000Z.flac", "20200101T010000Z.flac"):
        sf.write(old_arch / name, np.zeros(4800, np.float32), 48000)
    deleted: list[str] = []
    low = {"on": False}

    def free_mb(_):  # low once the replay runs: each deletion frees enough for one file
        if not low["on"]:
            return 1e6
        now_arch = sorted(p.name for p in old_arch.glob("*.flac"))
        now_clips = sorted(p.name for p in old_clips.glob("*.flac"))
        state = (tuple(now_arch), tuple(now_clips))
        if deleted and deleted[-1] == state:
            return 1e6
        deleted.append(state)
        return 1.0

    rec = Recorder(cfg, free_mb=free_mb)
    low["on"] = True
    rec.run()
    assert not (old_arch / "20200101T000000Z.flac").exists()
    # each low reading is followed by one deletion: a clip only once no closed archive
    # file was left (the open .part is never a candidate)
    for before, after in zip(deleted, deleted[1:] + [None]):  # noqa: B905 - Py3.9
        if after is not None and after[1] != before[1]:
            assert not before[0], (before, after)
    assert deleted[0][0][0] == "20200101T000000Z.flac"
    assert (cfg.data_dir / "detections.sqlite").is_file()
    health = json.loads((cfg.data_dir / "health.json").read_text())
    assert health["archive"]["deleted"] >= 1 and health["windows"] == 10


def test_bad_archive_settings_stop_at_start(tmp_path, standalone):  # noqa: F811
    audio = recording(tmp_path / "in" / "rec.wav", 4.0)
    for key, value, msg in (("mode", "some", "use one of scheduled, all"),
                            ("period_s", "5", "must be in [10.0, 86400.0]"),
                            ("max_gb", "-1", "must be in"),
                            ("archive__enabled", "maybe", "yes or no")):
        path = schedule_config(tmp_path, standalone, audio, **{key: value})
        with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            load_config(path)
