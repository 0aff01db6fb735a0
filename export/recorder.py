"""The field recorder: audio in, detections in SQLite, clips, daily tables and a health file.

Runs a standalone custom classifier (audio → logits, from ``edgebird train``) on 3-s windows
of a continuous stream, with the same scoring as ``edgebird analyze``
(``edgebird.core.scores``: the sensitivity shift, per-class thresholds, the species filter) and the
same table writers. It imports numpy, soundfile and the LiteRT interpreter, never TensorFlow
or the training code, and runs on Python 3.9 (Raspberry Pi OS Bullseye).

Durability: detections go to SQLite in WAL mode, committed window by window, so a power cut
or ``kill -9`` loses at most the window being processed and leaves the database intact; a
replayed file started again does not duplicate rows (unique per source, time and species).
Clips and tables are written to a temporary file and renamed. SIGTERM finishes the current
window, writes the tables and the health file, and exits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import logging.handlers
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from edgebird.export.archive import Archive
from edgebird.export.config import ConfigError, RecorderConfig, load_config
from edgebird.export.schedule import ClockCheck, utc_text
from edgebird.export.sources import RATE, Ring, SourceError, capture, make_source

from edgebird.core.files import atomic_path, atomic_write_bytes, hash_file
from edgebird.core.labels import read_labels, read_species_list, read_thresholds
from edgebird.core.scores import DEFAULT_MIN_CONF, Detection, flat_sigmoid, select

WINDOW = 3 * RATE
MIN_SEGMENT = RATE  # a final partial window of at least 1 s is kept, zero-padded (as analyze)
log = logging.getLogger("edgebird.recorder")

SCHEMA = """
CREATE TABLE IF NOT EXISTS detections (
    id INTEGER PRIMARY KEY,
    time_utc TEXT NOT NULL,
    source TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    species TEXT NOT NULL,
    confidence REAL NOT NULL,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    clip TEXT,
    clock TEXT,
    UNIQUE (source, start_s, species)
);
CREATE INDEX IF NOT EXISTS detections_time ON detections (time_utc);
"""


def _read(parse: Callable, path: Path, key: str):
    """One of the model's text files (``[model] key``), parsed by the kit core's parser, the
    one ``analyze`` uses: a file it refuses stops the recorder at start, saying what to fix."""
    try:
        return parse(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"[model] {key}: {path} cannot be read ({exc})") from None
    except ValueError as exc:
        raise ConfigError(f"[model] {key}: {exc}") from None


def _match_thresholds(rows: dict[str, float], labels: list[str], path: Path) -> None:
    """A thresholds file must be the model's: none of its classes a label means another
    model's file (refused; it would silently leave every class at the default), some missing
    is reported (those classes use the default)."""
    import difflib

    unknown = [c for c in rows if c not in labels]
    if rows and len(unknown) == len(rows):
        close = difflib.get_close_matches(unknown[0], labels, n=1, cutoff=0.6)
        hint = f" (closest label to '{unknown[0]}': '{close[0]}')" if close else ""
        raise ConfigError(
            f"[model] thresholds: {path}: none of its {len(rows)} classes is a label of the "
            f"model{hint}: use the X_Thresholds.csv written beside this model by edgebird "
            "train, or delete the line to use min_conf for all classes")
    if unknown:
        log.warning("thresholds %s: %d class(es) the model does not have, ignored: %s",
                    path, len(unknown), ", ".join(unknown[:10]))
    missing = [lab for lab in labels if lab not in rows]
    if rows and missing:
        log.warning("thresholds %s: no threshold for %d class(es), they use %s: %s", path,
                    len(missing), DEFAULT_MIN_CONF, ", ".join(missing[:10]))


class Model:
    """The standalone classifier with its labels, thresholds and species filter."""

    def __init__(self, cfg: RecorderConfig):
        from edgebird.core.runtime import make_interpreter

        self.labels = _read(read_labels, cfg.labels, "labels")
        try:
            self.interp = make_interpreter(model_path=str(cfg.model), num_threads=cfg.threads)
        except Exception as exc:  # noqa: BLE001 - any loader failure means an unusable file
            raise ConfigError(f"{cfg.model}: not a usable TFLite model ({exc})") from None
        inp = self.interp.get_input_details()[0]
        out = self.interp.get_output_details()[0]
        if int(inp["shape"][-1]) != WINDOW:
            raise ConfigError(f"{cfg.model.name} takes {int(inp['shape'][-1])} inputs, not "
                              f"{WINDOW} samples: the recorder needs the standalone model "
                              "(audio in), not the head-only one")
        n_out = int(out["shape"][-1])
        if n_out != len(self.labels):
            raise ConfigError(f"{cfg.labels.name} has {len(self.labels)} labels but "
                              f"{cfg.model.name} has {n_out} outputs: they do not belong "
                              "together")
        self.interp.resize_tensor_input(inp["index"], [1, WINDOW])
        self.interp.allocate_tensors()
        self.input, self.output = inp["index"], out["index"]
        self.name = cfg.model.name
        self.sha256 = hash_file(cfg.model, "sha256")  # in chunks: no 52 MB peak
        self.thresholds = np.full(len(self.labels), cfg.min_conf if cfg.min_conf is not None
                                  else DEFAULT_MIN_CONF)
        if cfg.thresholds is not None:  # checked even when min_conf overrides it, as analyze
            rows = _read(read_thresholds, cfg.thresholds, "thresholds")
            _match_thresholds(rows, self.labels, cfg.thresholds)
            if cfg.min_conf is None:
                self.thresholds = np.array([rows.get(lab, DEFAULT_MIN_CONF)
                                            for lab in self.labels])
        self.allowed = None
        if cfg.species_list is not None:
            wanted = _read(read_species_list, cfg.species_list, "species_list")
            unknown = sorted(set(wanted) - set(self.labels))
            if unknown:
                log.warning("species list: %d label(s) the model does not have, ignored: %s",
                            len(unknown), ", ".join(unknown[:10]))
            self.allowed = frozenset(w for w in wanted if w in self.labels)
            if not self.allowed:
                raise ConfigError(f"{cfg.species_list}: none of its labels is a class of "
                                  "the model")
        self.sensitivity = cfg.sensitivity

    def detect(self, window: np.ndarray, start: float, end: float,
               source: str) -> list[Detection]:
        self.interp.set_tensor(self.input, window.reshape(1, WINDOW))
        self.interp.invoke()
        logits = self.interp.get_tensor(self.output)
        scores = flat_sigmoid(logits, self.sensitivity)
        return select(scores, np.array([start]), np.array([end]), self.labels,
                      self.thresholds, None, self.allowed, source)


class Database:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Databases from before the clock flag get the column; their rows stay, with no
        flag (NULL: the clock was not watched then)."""
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(detections)")}
        if "clock" not in columns:
            with self.conn:
                self.conn.execute("ALTER TABLE detections ADD COLUMN clock TEXT")

    def add(self, rows: list[tuple]) -> list[bool]:
        """Insert a window's rows in one transaction; which were new (a replay started again
        finds its earlier rows and must not write their clips twice)."""
        new = []
        with self.conn:
            for row in rows:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO detections (time_utc, source, start_s, end_s, "
                    "species, confidence, model, model_sha256, clip, clock) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?)",
                    row)
                new.append(cur.rowcount == 1)
        return new

    def day(self, day: str) -> list[tuple]:
        """One UTC day's rows; a range on ``time_utc`` so the index is used."""
        end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
        return self.conn.execute(
            "SELECT time_utc, source, start_s, end_s, species, confidence FROM detections "
            "WHERE time_utc >= ? AND time_utc < ? ORDER BY time_utc, species",
            (day, end)).fetchall()

    def forget_clip(self, clip: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE detections SET clip = NULL WHERE clip = ?", (clip,))

    def close(self) -> None:
        self.conn.close()


class Recorder:
    """One recorder run. ``free_mb`` and ``clock`` are injectable so tests can simulate a
    full disk, a schedule's day and a clock jump."""

    def __init__(self, cfg: RecorderConfig,
                 free_mb: Callable[[Path], float] | None = None,
                 clock: ClockCheck | None = None):
        self.cfg = cfg
        self.model = Model(cfg)
        self.data = cfg.data_dir
        for sub in ("clips", "tables"):
            (self.data / sub).mkdir(parents=True, exist_ok=True)
        self.db = Database(self.data / "detections.sqlite")
        self.free_mb = free_mb or (lambda p: shutil.disk_usage(p).free / 1e6)
        self.stop = threading.Event()
        self.clock = clock or ClockCheck(cfg.jump_s, cfg.check_ntp)
        self.schedule = cfg.schedule
        self.started = time.time()
        self.health: dict[str, object] = {
            "station": cfg.station, "model": self.model.name,
            "model_sha256": self.model.sha256, "source": cfg.source, "status": "starting",
            "windows": 0, "detections": 0, "last_detection": None, "lag_s": 0.0,
            "overruns": 0, "windows_skipped": 0, "clips_deleted": 0, "disk_low": False,
            "errors": []}
        self.days_written: set = set()
        self.days_touched: set = set()
        self._last_health = 0.0
        self.archive = Archive(self.data / "archive", cfg.archive, RATE, self._room) \
            if cfg.archive.enabled else None

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        source = make_source(self.cfg.source, self.cfg.device, self.cfg.input_path,
                             self.cfg.realtime)
        self.health["status"] = "running"
        errors: list[str] = []
        for name, stream in source.streams():
            if self.stop.is_set():
                break
            if self.cfg.source != "file":  # offsets restart at 0 each run: name the run
                name = f"{name}@{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
            ring = Ring(max(60.0, 3 + self.cfg.clip_pre + self.cfg.clip_post + 10),
                        blocking=self.cfg.source == "file")
            thread = capture(stream, ring, self.stop, errors)
            self._process(name, ring)
            ring.close()
            thread.join(timeout=5)
            self.health["overruns"] = int(self.health["overruns"]) + ring.overruns
            if errors:
                self.health["errors"] = (list(self.health["errors"]) + errors)[-20:]
                log.error("%s", errors[-1])
                errors.clear()
        self.health["status"] = "stopped"
        self.finish()
        return 0

    def _process(self, name: str, ring: Ring) -> None:
        hop = int(round((3.0 - self.cfg.overlap) * RATE))
        pos = 0
        pending: list[tuple] = []  # clips waiting for their post-context
        stream_start = self.clock.start_stream()
        while not self.stop.is_set():
            written = ring.wait_for(pos + WINDOW, self.stop)
            if written < pos + WINDOW and not (ring.closed and written - pos >= MIN_SEGMENT):
                break
            start, end = pos / RATE, min(pos + WINDOW, written) / RATE
            flag = self.clock.check()
            active = self.schedule.active(stream_start + start)
            if self.archive is not None:  # the hop's new samples (the next window has the rest)
                self.archive.feed(ring.read(pos, min(pos + hop, written)),
                                  stream_start + start, active)
            if not active:  # outside: not even scored
                self.health["windows_skipped"] = int(self.health["windows_skipped"]) + 1
                dets = []
            else:
                window = ring.read(pos, pos + WINDOW)
                dets = self.model.detect(window, start, round(end, 6), name)
                self.health["windows"] = int(self.health["windows"]) + 1
            when = self._time(stream_start, start)
            rows = [(when, name, d.start, d.end, d.label, round(d.confidence, 6),
                     self.model.name, self.model.sha256,
                     self._clip_name(name, d, when) if self.cfg.clips else None, flag)
                    for d in dets]
            for row, d, new in zip(rows, dets, self.db.add(rows)):  # noqa: B905 - Py3.9
                if new and row[-2]:
                    pending.append((row[-2], d))
            if dets:
                self.days_touched.add(when[:10])
            if dets:
                self.health["detections"] = int(self.health["detections"]) + len(dets)
                self.health["last_detection"] = {"time_utc": when, "species": dets[0].label,
                                                 "confidence": round(dets[0].confidence, 4)}
            pending = self._write_clips(ring, pending, final=False)
            if self.cfg.source != "file" or self.cfg.realtime:
                self.health["lag_s"] = round((ring.written - pos - WINDOW) / RATE, 2)
            pos += hop
            # keep what the next window and the waiting clips' pre-context still need
            needed = [pos] + [int(d.start * RATE) for _, d in pending]
            ring.release(max(0, min(needed) - int(self.cfg.clip_pre * RATE)))
            self._tick()
        if self.archive is not None:
            if ring.written > pos and not self.stop.is_set():  # the stream's tail
                self.archive.feed(ring.read(pos, ring.written), stream_start + pos / RATE,
                                  self.schedule.active(stream_start + pos / RATE))
            self.archive.close()  # a stream's end is a gap
        self._write_clips(ring, pending, final=True)

    def _time(self, stream_start: float, offset: float) -> str:
        """UTC time of a window: when its stream started being captured plus its offset (for a
        replayed file, the replay's time, not the recording's)."""
        t = dt.datetime.fromtimestamp(stream_start + offset, dt.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _clip_name(self, name: str, d: Detection, when: str) -> str:
        species = d.label.split("_")[-1].replace("/", "_").replace(" ", "_")
        stamp = when[:19].replace(":", "-")
        return f"clips/{when[:10]}/{species}/{stamp}_{Path(name).stem}_{d.start:.1f}s_" \
               f"{d.confidence:.3f}.flac"

    def _write_clips(self, ring: Ring, pending: list[tuple], final: bool) -> list[tuple]:
        left = []
        for clip, d in pending:
            lo = max(0, int((d.start - self.cfg.clip_pre) * RATE))
            hi = int((d.end + self.cfg.clip_post) * RATE)
            if ring.written < hi and not (final or ring.closed):
                left.append((clip, d))
                continue
            hi = min(hi, ring.written)
            if not self._room():
                self.db.forget_clip(clip)
                continue
            dest = self.data / clip
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                sf.write(tmp, ring.read(lo, hi), RATE, format="FLAC", subtype="PCM_16")
        return left

    def _room(self) -> bool:
        """Free space for a clip or an archive file: delete the oldest archive files, then
        the oldest clips (never the database) until there is; if there are none left to
        delete, skip clips (and pause the archive) and keep detecting."""
        clips_dir = self.data / "clips"
        while self.free_mb(self.data) < self.cfg.min_free_mb:
            if self.archive is not None and self.archive.delete_oldest():
                continue
            oldest = sorted(clips_dir.rglob("*.flac"), key=lambda p: p.stat().st_mtime)[:20]
            if not oldest:
                if not self.health["disk_low"]:
                    log.warning("disk low and no clip left to delete: detections go on, "
                                "clips are not saved")
                self.health["disk_low"] = True
                return False
            for p in oldest:
                p.unlink(missing_ok=True)
                self.db.forget_clip(str(p.relative_to(self.data)))
                self.health["clips_deleted"] = int(self.health["clips_deleted"]) + 1
        self.health["disk_low"] = False
        return True

    def _tick(self) -> None:
        """Every few seconds: the health file; after midnight (UTC), yesterday's tables."""
        if time.time() - self._last_health >= self.cfg.health_every:
            self.write_health()
            yesterday = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)) \
                .strftime("%Y-%m-%d")
            if yesterday not in self.days_written:
                self.write_tables(yesterday)

    # -- outputs ----------------------------------------------------------------------------
    def write_health(self) -> None:
        self._last_health = time.time()
        h = dict(self.health)
        h["uptime_s"] = round(time.time() - self.started, 1)
        h["clock"] = self.clock.health()
        h["schedule"] = self._schedule_health()
        h["disk_free_mb"] = round(self.free_mb(self.data), 1)
        h["archive"] = None if self.archive is None else self.archive.health()
        h["updated_utc"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        atomic_write_bytes(self.data / "health.json", json.dumps(h, indent=1).encode())

    def _schedule_health(self) -> dict:
        """The schedule in words, whether it detects now, and its current or next window."""
        now = self.clock.wall()
        nxt = self.schedule.next_window(now)
        return {"description": self.schedule.describe(), "active": self.schedule.active(now),
                "next_window": None if nxt is None else {
                    "start_utc": utc_text(nxt[0]),
                    "end_utc": None if nxt[1] == float("inf") else utc_text(nxt[1])}}

    def write_tables(self, day: str) -> None:
        """``tables/<day>.BirdNET.selection.table.txt`` and ``.results.csv`` for one UTC day,
        written by edgebird's own writers; times in the Raven table are seconds since 00:00."""
        from edgebird.core.writers.daily import day_tables

        rows = self.db.day(day)
        self.days_written.add(day)
        if not rows:
            return
        for suffix, text in day_tables(rows, self.cfg.station, RATE).items():
            atomic_write_bytes(self.data / "tables" / f"{day}{suffix}", text.encode("utf-8"))

    def finish(self) -> None:
        """Tables of the days this run added to (not every day in an old database: a year of
        days would outlast systemd's stop timeout), then the health file."""
        if self.archive is not None:
            self.archive.close()
        for day in sorted(self.days_touched):
            self.write_tables(day)
        self.write_health()
        self.db.close()


def _logging(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    handlers = [logging.handlers.RotatingFileHandler(data_dir / "recorder.log",
                                                     maxBytes=5_000_000, backupCount=3),
                logging.StreamHandler()]
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="edgebird-recorder",
                                     description="edgebird's field recorder")
    parser.add_argument("--config", "-c", required=True, help="the recorder's config.ini")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        _logging(cfg.data_dir)
        recorder = Recorder(cfg)
    except (ConfigError, SourceError) as exc:
        print(f"edgebird-recorder: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *a: recorder.stop.set())
    signal.signal(signal.SIGINT, lambda *a: recorder.stop.set())
    if cfg.dashboard.enabled:  # a daemon thread: it ends with the recorder
        from edgebird.export.dashboard import start_thread

        start_thread(cfg)
    log.info("started: model %s (sha256 %s), source %s, data in %s", recorder.model.name,
             recorder.model.sha256[:12], cfg.source, cfg.data_dir)
    try:
        code = recorder.run()
    except SourceError as exc:
        log.error("%s", exc)
        recorder.health["status"] = f"failed: {exc}"
        recorder.finish()
        return 1
    log.info("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
