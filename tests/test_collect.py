"""``edgebird collect``: a recorder's data folder from a replay (schedule and archive on) into
day tables equal to the recorder's own, label folders of clips the Review tab and ``train``
read, and the archive for ``analyze``; the card's database is never modified."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from edgebird.export.config import load_config
from edgebird.export.recorder import Recorder
from edgebird.export.schedule import ClockCheck
from test_recorder import recording, standalone  # noqa: F401 - the model fixture
from test_schedule import FakeClock, epoch, schedule_config

from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
from edgebird.pipeline.collect import CollectError, collect
from edgebird.training.dataset import scan_folder
from edgebird.training.review import pending


@pytest.fixture
def card(tmp_path, standalone):  # noqa: F811
    """A replayed 30-s recording at 06:00 UTC, 6 s on / 6 s off, archive in 10-s files."""
    audio = recording(tmp_path / "in" / "rec.wav", 30.0)
    cfg = load_config(schedule_config(tmp_path, standalone, audio, duty_on="6",
                                      duty_off="6", min_conf="0.0", archive__enabled="yes",
                                      period_s="10"))
    fake = FakeClock(epoch(2026, 5, 1, 6, 0))
    Recorder(cfg, clock=ClockCheck(2.0, False, lambda: fake.w, lambda: fake.m)).run()
    return cfg.data_dir


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collect_a_card(tmp_path, card, standalone):  # noqa: F811
    db = card / "detections.sqlite"
    with sqlite3.connect(db) as c:
        n_rows, labels = c.execute("SELECT COUNT(*), COUNT(DISTINCT species) FROM "
                                   "detections").fetchone()
    assert n_rows > 0
    before = digest(db)
    out = tmp_path / "season"
    r = collect(card, out, station="test")
    assert (r.days, r.rows, r.clips, r.clips_missing, r.archive) == (1, n_rows, n_rows, 0, 3)
    assert digest(db) == before
    # the day's tables are the recorder's own, byte for byte
    for table in (card / "tables").iterdir():
        assert (out / "tables" / table.name).read_bytes() == table.read_bytes()
    # clips: one folder per label, Review sorts them by confidence, train reads the folders
    folders = sorted(p.name for p in (out / "clips").iterdir())
    assert len(folders) == labels
    assert len(pending(out / "clips" / folders[0])) > 0
    ts = scan_folder(out / "clips")
    assert sorted(ts.classes) == folders and len(ts.files) == n_rows
    assert sorted(p.name for p in (out / "archive").iterdir()) == [
        "20260501T060000Z.flac", "20260501T060012Z.flac", "20260501T060024Z.flac"]
    # the archive is input for analyze: one table per archive file
    analyze_files([out / "archive"], out / "analyzed", AnalyzeSettings(
        classifier=str(standalone), min_conf=0.0, rtypes=("csv",)), progress=False,
        echo=lambda m: None)
    assert len(list((out / "analyzed").glob("*.BirdNET.results.csv"))) == 3
    # again: nothing doubled
    assert collect(card, out, station="test") == r
    assert sum(1 for _ in (out / "clips").rglob("*.flac")) == n_rows


def test_collect_links_the_archive_and_counts_deleted_clips(tmp_path, card):
    """A clip the disk guard deleted is counted, not an error; --link symlinks the archive."""
    next((card / "clips").rglob("*.flac")).unlink()
    r = collect(card, tmp_path / "out", link=True)
    assert r.clips_missing == 1 and r.clips == r.rows - 1 and r.archive == 3
    links = list((tmp_path / "out" / "archive").iterdir())
    assert len(links) == 3 and all(p.is_symlink() and p.resolve().is_file() for p in links)


def test_collect_reads_a_read_only_card(tmp_path, card):
    """A card mounted read-only still collects (mode=ro, immutable without a WAL left)."""
    if os.geteuid() == 0:
        pytest.skip("root can write a read-only folder: run as a user to test this")
    for p in [card, *card.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        assert collect(card, tmp_path / "out").rows > 0
    finally:
        for p in [card, *card.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_collect_refuses_a_folder_that_is_not_a_card(tmp_path):
    with pytest.raises(CollectError, match="no detections.sqlite here"):
        collect(tmp_path, tmp_path / "out")
    (tmp_path / "detections.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(CollectError, match="not a readable recorder database"):
        collect(tmp_path, tmp_path / "out")
    run = subprocess.run([sys.executable, "-m", "edgebird", "collect", str(tmp_path / "x"),
                          "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "no detections.sqlite here" in run.stderr
