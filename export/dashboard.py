"""The recorder's dashboard: a small local web page of what the recorder wrote.

Standard library only for the server (``http.server``) and numpy + soundfile (the kit's own
dependencies) for the spectrograms, so it fits beside the recorder on a Pi Zero 2 W. It only
reads: the database is opened read-only (SQLite URI ``mode=ro``, a connection per request,
so a page can never lock or corrupt it), ``health.json`` and the clips. No JavaScript; pages
are bounded (a day at a time, ``PAGE`` rows a page) so a season of rows stays light.

Security, the same attacks the GUI is tested against: it listens on 127.0.0.1 unless the
config sets another address *and* a password (``config.py`` refuses the one without the
other); with a password every request needs HTTP Basic auth, checked against the stored
PBKDF2 hash in constant time; on 127.0.0.1 the ``Host`` header must name this machine (a web
page cannot reach it by DNS rebinding); only GET/HEAD; files are served only from
``data_dir/clips`` (resolved, symlinks followed, then checked to be inside it).

Run it with the recorder (``[dashboard] enabled = yes``: a daemon thread of the recorder's
process, so nothing outlives it) or alone: ``edgebird-dashboard --config config.ini``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import getpass
import hashlib
import html
import json
import logging
import re
import socket
import sqlite3
import sys
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from edgebird.export.config import ConfigError, RecorderConfig, is_loopback, load_config
from edgebird.export.passwords import PasswordHashError, make_hash

log = logging.getLogger("edgebird.dashboard")

PAGE = 20  # detections per page, each with a spectrogram and a player
MAX_SPECIES = 100  # rows of the species tables
STALE_S = 60.0  # health.json older than this: the recorder is not writing it
CACHE_IMAGES = 64  # spectrograms kept in memory (~50 KB each)
CACHE_KB = 256  # SQLite page cache of each (short-lived) read connection
DAY_RX = re.compile(r"\d{4}-\d{2}-\d{2}")

STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:1em auto;max-width:1100px;padding:0 1em;
color:#222}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid
#ddd}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.num{text-align:right}.ok{color:#1a7f37}.bad{color:#c62828;
font-weight:bold}.muted{color:#777}code{font-size:.9em;word-break:break-all}
.hours td{text-align:center;min-width:1.6em;padding:2px 1px;font-size:.85em;border:1px solid
#eee}.hours td:first-child{text-align:left;white-space:nowrap;padding-right:8px}
.det{display:flex;gap:12px;align-items:center;border-bottom:1px solid #eee;padding:6px 0}
.det img{width:480px;max-width:60vw;height:128px;background:#000}.det audio{width:260px}
nav a{margin-right:.8em}.pill{display:inline-block;padding:0 6px;border-radius:4px;
background:#eee}
"""
CSP = ("default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class NotFound(Exception):
    pass


# -- what the recorder wrote ----------------------------------------------------------------
class Store:
    """Read-only views of ``data_dir``: the database, ``health.json`` and the clips."""

    def __init__(self, data_dir: Path):
        self.data = data_dir
        self.db_path = data_dir / "detections.sqlite"
        self.clips = data_dir / "clips"

    def connect(self) -> sqlite3.Connection | None:
        if not self.db_path.is_file():
            return None
        uri = f"file:{quote(str(self.db_path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=5)
        conn.execute(f"PRAGMA cache_size = -{CACHE_KB}")  # SQLite's default is 2 MB
        return conn

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        conn = self.connect()
        if conn is None:
            return []
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:  # a database being created, not yet a table
            log.warning("database: %s", exc)
            return []
        finally:
            conn.close()

    def species_counts(self, lo: str, hi: str) -> list[tuple]:
        return self.query(
            "SELECT species, COUNT(*), MAX(confidence) FROM detections WHERE time_utc >= ? "
            "AND time_utc < ? GROUP BY species ORDER BY COUNT(*) DESC, species LIMIT ?",
            (lo, hi, MAX_SPECIES))

    def hours(self, lo: str, hi: str, zone: Zone) -> dict[str, list[int]]:
        """Counts per species per local hour: grouped by UTC minute in SQL (bounded: 1,440
        rows a species), then by the zone's hour (zones can be 30 or 45 minutes off UTC)."""
        table: dict[str, list[int]] = {}
        for species, minute, n in self.query(
                "SELECT species, substr(time_utc, 1, 16), COUNT(*) FROM detections "
                "WHERE time_utc >= ? AND time_utc < ? GROUP BY 1, 2", (lo, hi)):
            table.setdefault(species, [0] * 24)[zone.local(minute + ":00.0Z").hour] += n
        return dict(sorted(table.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:MAX_SPECIES])

    def detections(self, lo: str, hi: str, species: str | None,
                   page: int) -> tuple[int, list[tuple]]:
        where, args = "time_utc >= ? AND time_utc < ?", [lo, hi]
        if species:
            where += " AND species = ?"
            args.append(species)
        total = self.query(f"SELECT COUNT(*) FROM detections WHERE {where}", tuple(args))
        rows = self.query(
            f"SELECT time_utc, species, confidence, clip, clock, model FROM detections "
            f"WHERE {where} ORDER BY time_utc DESC, species LIMIT ? OFFSET ?",
            (*args, PAGE, (page - 1) * PAGE))
        return (total[0][0] if total else 0), rows

    def models(self, lo: str, hi: str) -> list[tuple]:
        return self.query(
            "SELECT model, model_sha256, COUNT(*), MIN(time_utc), MAX(time_utc) FROM "
            "detections WHERE time_utc >= ? AND time_utc < ? GROUP BY model, model_sha256 "
            "ORDER BY MAX(time_utc) DESC", (lo, hi))

    def health(self) -> dict | None:
        try:
            return json.loads((self.data / "health.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def clip(self, rel: str) -> Path:
        """The clip file ``rel`` names (a path under ``clips/``), or NotFound: no ``..``, no
        absolute path, no backslash or NUL, and after resolving symbolic links still inside
        the clips folder."""
        parts = rel.split("/")
        if (not rel or "\x00" in rel or "\\" in rel or rel.startswith("/")
                or any(p in ("", ".", "..") for p in parts) or not rel.endswith(".flac")):
            raise NotFound(rel)
        root = self.clips.resolve()
        try:
            path = (root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            raise NotFound(rel) from None
        if not path.is_relative_to(root) or not path.is_file():
            raise NotFound(rel)
        return path


class Zone:
    """The page's days and hours: those of ``[schedule] timezone`` (the station's local time;
    UTC by default). The database keeps UTC; a local day is the UTC range between its two
    local midnights (23 or 25 hours on a daylight-saving change)."""

    def __init__(self, tz: dt.tzinfo):
        self.tz = tz
        self.name = getattr(tz, "key", None) or "UTC"

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    def bounds(self, first: dt.date, days: int = 1) -> tuple[str, str]:
        """``time_utc >= lo AND time_utc < hi`` for ``days`` local days from ``first``."""
        def utc(d: dt.date) -> str:
            return dt.datetime.combine(d, dt.time(), self.tz).astimezone(
                dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")

        return utc(first), utc(first + dt.timedelta(days=days))

    def local(self, stamp: str) -> dt.datetime:
        """A ``time_utc`` (``...T06:00:00.000000Z``, or without fraction) in local time."""
        t = dt.datetime.strptime(stamp.rstrip("Z").split(".")[0], "%Y-%m-%dT%H:%M:%S")
        return t.replace(tzinfo=dt.timezone.utc).astimezone(self.tz)

    def text(self, stamp: object, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A UTC stamp from the health file, in local time (as given if not one)."""
        try:
            return self.local(str(stamp)).strftime(fmt)
        except ValueError:
            return str(stamp)


# -- the page -------------------------------------------------------------------------------
def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def species_name(label: str) -> str:
    """``Turdus merula_Eurasian Blackbird`` -> common name with the scientific one."""
    sci, _, common = label.partition("_")
    if not common:
        return esc(label)
    return f"{esc(common)} <span class=muted><i>{esc(sci)}</i></span>"


def ago(when: str | None) -> float | None:
    if not when:
        return None
    try:
        t = dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return (dt.datetime.now(dt.timezone.utc) - t).total_seconds()


def health_html(h: dict | None, cfg: RecorderConfig, model_sha: str, zone: Zone) -> str:
    if h is None:
        return (f"<p class=bad>No health file yet ({esc(cfg.data_dir / 'health.json')}): the "
                "recorder has not run, or not for 10 seconds.</p>"
                f"<p>Model in config.ini: <b>{esc(cfg.model.name)}</b><br>SHA-256 "
                f"<code>{esc(model_sha)}</code></p>")
    age = ago(h.get("updated_utc"))
    fresh = age is not None and age <= STALE_S
    status = str(h.get("status", "?"))
    state = (f"<span class=ok>{esc(status)}</span>" if fresh and status == "running" else
             f"<span class=bad>{esc(status)}"
             f"{'' if fresh else ' (health not updated for ' + _span(age) + ')'}</span>")
    clock = h.get("clock") or {}
    sched = h.get("schedule") or {}
    nxt = sched.get("next_window") or {}
    disk_low = bool(h.get("disk_low"))
    last = h.get("last_detection") or {}
    errors = list(h.get("errors") or [])[-3:]
    rows = [
        ("Recorder", f"{state} &middot; station <b>{esc(h.get('station', '?'))}</b> &middot; "
                     f"source {esc(h.get('source', '?'))} &middot; up "
                     f"{_span(h.get('uptime_s'))} &middot; health written {_span(age)} ago"),
        ("Model", f"<b>{esc(h.get('model', '?'))}</b> SHA-256 "
                  f"<code>{esc(h.get('model_sha256', '?'))}</code>"),
        ("Disk", f"<span class={'bad' if disk_low else 'ok'}>{esc(h.get('disk_free_mb'))} MB "
                 f"free{' (low: clips are not saved)' if disk_low else ''}</span> &middot; "
                 f"{esc(h.get('clips_deleted', 0))} old clips deleted to make room"),
        ("Lag", f"{esc(h.get('lag_s'))} s behind the audio &middot; "
                f"<span class={'bad' if h.get('overruns') else 'ok'}>"
                f"{esc(h.get('overruns', 0))} overruns</span> (audio lost because the "
                "recorder fell behind)"),
        ("Clock", f"<span class={'ok' if clock.get('trusted') else 'bad'}>"
                  f"{esc(clock.get('flag', '?'))}</span> &middot; network time (NTP): "
                  f"{_yes(clock.get('synchronized'))} &middot; "
                  f"{esc(clock.get('jumps', 0))} jumps of the clock"),
        ("Schedule", f"{esc(sched.get('description', '?'))} &middot; "
                     f"{'detecting now' if sched.get('active') else 'paused now'}"
                     + (f" &middot; next window {esc(zone.text(nxt.get('start_utc')))}"
                        f"{' to ' + esc(zone.text(nxt['end_utc'])) if nxt.get('end_utc') else ''}"
                        if nxt else "")),
        ("Windows", f"{esc(h.get('windows', 0))} scored, {esc(h.get('windows_skipped', 0))} "
                    f"outside the schedule, {esc(h.get('detections', 0))} detections this "
                    "run" + (f"; last at {esc(zone.text(last.get('time_utc'), '%H:%M:%S'))} "
                             f"{species_name(str(last.get('species', '')))} "
                             f"{esc(last.get('confidence'))}" if last else "")),
    ]
    if errors:
        rows.append(("Errors", "<br>".join(f"<span class=bad>{esc(e)}</span>"
                                           for e in errors)))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) \
        + "</table>"


def _yes(value) -> str:
    return {True: "yes", False: "no"}.get(value, "unknown")


def _span(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    s = int(seconds)
    return f"{s // 86400}d {s % 86400 // 3600}h" if s >= 86400 else \
        f"{s // 3600}h {s % 3600 // 60}m" if s >= 3600 else f"{s // 60}m {s % 60}s"


def link(**params) -> str:
    return "/?" + urlencode({k: v for k, v in params.items() if v not in (None, "", 1)})


def page_html(store: Store, cfg: RecorderConfig, model_sha: str, day: str,
              species: str | None, page: int) -> str:
    zone = Zone(cfg.schedule.timezone)
    today = zone.today()
    week = zone.bounds(today - dt.timedelta(days=6), 7)
    today_counts = store.species_counts(*zone.bounds(today))
    week_counts = store.species_counts(*week)
    today_by = {s: n for s, n, _ in today_counts}
    where = ("UTC, as in the database and the tables" if zone.name == "UTC" else
             f"local ({esc(zone.name)}, config.ini [schedule] timezone); the database and "
             "the tables keep UTC")
    parts = [f"<h1>edgebird &middot; {esc(cfg.station)}</h1>",
             f"<p class=muted>Times and days are {where}. Now: "
             f"{dt.datetime.now(zone.tz):%Y-%m-%d %H:%M}.</p>",
             "<h2>Health</h2>", health_html(store.health(), cfg, model_sha, zone)]
    n_today, n_week = sum(today_by.values()), sum(n for _, n, _ in week_counts)
    parts.append(f"<h2>Species</h2><p>Today: <b>{n_today}</b> detections of "
                 f"<b>{len(today_counts)}</b> species. This week (the last 7 days): "
                 f"<b>{n_week}</b> detections of <b>{len(week_counts)}</b> species.</p>")
    if week_counts:
        parts.append("<table><tr><th>Species</th><th class=num>today</th>"
                     "<th class=num>7 days</th><th class=num>best confidence</th></tr>")
        for s, n, best in week_counts:
            parts.append(f"<tr><td><a href=\"{esc(link(day=day, species=s))}\">"
                         f"{species_name(s)}</a></td><td class=num>{today_by.get(s, 0)}</td>"
                         f"<td class=num>{n}</td><td class=num>{best:.2f}</td></tr>")
        parts.append("</table>")
    days = [(today - dt.timedelta(days=i)).isoformat() for i in range(7)]
    nav = " ".join(f"<a href=\"{esc(link(day=d, species=species))}\">"
                   f"{'<b>' + d + '</b>' if d == day else d}</a>" for d in days)
    parts.append(f"<h2>Per hour on {esc(day)}</h2><nav>{nav} "
                 "<form method=get action=/ style=display:inline>"
                 f"<input type=date name=day value=\"{esc(day)}\"> "
                 "<button>show day</button></form></nav>")
    lo, hi = zone.bounds(dt.date.fromisoformat(day))
    hours = store.hours(lo, hi, zone)
    if hours:
        peak = max(max(v) for v in hours.values()) or 1
        parts.append("<table class=hours><tr><th>Species</th>"
                     + "".join(f"<th>{h:02d}</th>" for h in range(24)) + "</tr>")
        for s, counts in hours.items():
            cells = "".join(
                f"<td style=\"background:rgba(80,18,123,{0.1 + 0.8 * n / peak:.2f});"
                f"color:{'#fff' if n / peak > 0.45 else '#222'}\">{n}</td>" if n else "<td></td>"
                for n in counts)
            parts.append(f"<tr><td>{species_name(s)}</td>{cells}</tr>")
        parts.append("</table>")
    else:
        parts.append("<p class=muted>No detections on this day.</p>")
    total, rows = store.detections(lo, hi, species, page)
    pages = max(1, -(-total // PAGE))
    what = f" of {species_name(species)}" if species else ""
    clear = f" <a href=\"{esc(link(day=day))}\">(all species)</a>" if species else ""
    parts.append(f"<h2>Detections{what} on {esc(day)}</h2><p>{total} detections{clear}; "
                 f"page {page} of {pages}, newest first. Spectrograms: 0-12 kHz from "
                 "bottom to top, the whole clip (the 3-s detection with its context) from left to "
                 "right.</p>")
    for when, s, conf, clip, clock, _model in rows:
        media = "<span class=muted>no clip (not saved, or deleted to free disk)</span>"
        if clip and clip.startswith("clips/"):
            rel = quote(clip[len("clips/"):])
            media = (f"<img src=\"/spectrogram/{esc(rel)}\" loading=lazy width=480 height=128 "
                     f"alt=\"spectrogram 0-12 kHz\"><audio controls preload=none "
                     f"src=\"/clip/{esc(rel)}\"></audio>")
        flag = "" if clock in (None, "synced") else \
            f" <span class=pill title=\"clock state when detected\">clock {esc(clock)}</span>"
        at = zone.text(when, "%H:%M:%S")
        parts.append(f"<div class=det><div style=min-width:220px><b>{at}</b>{flag}<br>"
                     f"{species_name(s)}<br>confidence {conf:.2f}</div>{media}</div>")
    if pages > 1:
        links = []
        if page > 1:
            links.append(f"<a href=\"{esc(link(day=day, species=species, page=page - 1))}\">"
                         "&larr; newer</a>")
        if page < pages:
            links.append(f"<a href=\"{esc(link(day=day, species=species, page=page + 1))}\">"
                         "older &rarr;</a>")
        parts.append(f"<nav>{' '.join(links)}</nav>")
    models = store.models(*week)
    if models:
        parts.append("<h2>Models in this week's detections</h2><table><tr><th>model</th>"
                     "<th>SHA-256</th><th class=num>detections</th><th>first</th>"
                     "<th>last</th></tr>")
        for name, sha, n, first, last in models:
            parts.append(f"<tr><td>{esc(name)}</td><td><code>{esc(sha)}</code></td>"
                         f"<td class=num>{n}</td><td>{esc(zone.text(first))}</td>"
                         f"<td>{esc(zone.text(last))}</td></tr>")
        parts.append("</table>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
            f"<title>edgebird {esc(cfg.station)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>")


# -- the server -----------------------------------------------------------------------------
class Images:
    """Spectrograms made on demand, one at a time in one worker thread (bounded CPU, and
    glibc keeps the arrays in that thread's one malloc arena instead of one per request
    thread), the last few kept."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.cache: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spectrogram")

    def get(self, path: Path) -> bytes:
        from edgebird.export.spectrogram import clip_png

        key = (str(path), path.stat().st_mtime_ns)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
            data = self.worker.submit(clip_png, path).result()
            self.cache[key] = data
            while len(self.cache) > CACHE_IMAGES:
                self.cache.popitem(last=False)
            return data


class Guard:
    """HTTP Basic auth against the stored hash. A header that matched once is remembered
    (its SHA-256, a bounded set), so PBKDF2 runs per login, not per image; checks run one
    at a time, so guessing costs the guesser and at most one core."""

    def __init__(self, cfg: RecorderConfig):
        self.password = cfg.dashboard.password
        self.good: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def allows(self, header: str | None) -> bool:
        if self.password is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        key = hashlib.sha256(header.encode("utf-8", "replace")).digest()
        with self.lock:
            if key in self.good:
                return True
            try:
                user_pass = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            _, sep, password = user_pass.partition(":")
            if not sep or not self.password.matches(password):
                return False
            self.good[key] = True
            while len(self.good) > 16:
                self.good.popitem(last=False)
            return True


LOOPBACK_HOST = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$", re.IGNORECASE)


def make_handler(cfg: RecorderConfig):
    from edgebird.core.files import hash_file

    store, images, guard = Store(cfg.data_dir), Images(), Guard(cfg)
    loopback_only = cfg.dashboard.loopback
    sha_of_config: list[str] = []

    def model_sha() -> str:
        if not sha_of_config:  # only when no health file names it; once
            try:
                sha_of_config.append(hash_file(cfg.model, "sha256"))
            except OSError as exc:
                sha_of_config.append(f"(cannot read: {exc.strerror})")
        return sha_of_config[0]

    class Handler(BaseHTTPRequestHandler):
        server_version = "edgebird-dashboard"
        sys_version = ""
        timeout = 30  # a client that stops sending frees its thread

        def log_message(self, format, *args):  # noqa: A002 - http.server's signature
            log.debug("%s %s", self.address_string(), format % args)

        def send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8",
                 extra: dict | None = None) -> None:
            self.send_response(status)
            headers = {"Content-Type": ctype, "Content-Length": str(len(body)),
                       "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                       "Referrer-Policy": "no-referrer", "Content-Security-Policy": CSP,
                       "Cache-Control": "no-store", **(extra or {})}
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def refuse(self, status: HTTPStatus, text: str, extra: dict | None = None) -> None:
            self.send(status, (text + "\n").encode(), extra=extra)

        def do_HEAD(self):  # noqa: N802 - http.server's names
            self.do_GET()

        def do_GET(self):  # noqa: N802
            host = self.headers.get("Host", "")
            if loopback_only and not LOOPBACK_HOST.match(host):
                return self.refuse(HTTPStatus.FORBIDDEN, "this dashboard answers only to "
                                   "localhost / 127.0.0.1")
            if not guard.allows(self.headers.get("Authorization")):
                return self.refuse(HTTPStatus.UNAUTHORIZED, "password required",
                                   {"WWW-Authenticate": 'Basic realm="edgebird dashboard", '
                                    'charset="UTF-8"'})
            url = urlsplit(self.path)
            try:
                if url.path == "/":
                    return self.page(url.query)
                for prefix in ("/clip/", "/spectrogram/"):
                    if url.path.startswith(prefix):
                        path = store.clip(unquote(url.path[len(prefix):]))
                        if prefix == "/clip/":
                            return self.send(HTTPStatus.OK, path.read_bytes(), "audio/flac",
                                             {"Cache-Control": "private, max-age=3600"})
                        return self.send(HTTPStatus.OK, images.get(path), "image/png",
                                         {"Cache-Control": "private, max-age=3600"})
                if url.path == "/health.json":
                    return self.send(HTTPStatus.OK, json.dumps(store.health()).encode(),
                                     "application/json")
            except NotFound:
                pass
            except Exception as exc:  # noqa: BLE001 - a bad clip must not stop the server
                log.warning("dashboard: %s: %s", url.path, exc)
                return self.refuse(HTTPStatus.INTERNAL_SERVER_ERROR, "cannot read that file")
            return self.refuse(HTTPStatus.NOT_FOUND, "not found")

        def page(self, query: str) -> None:
            q = parse_qs(query, max_num_fields=10)
            day = (q.get("day") or [Zone(cfg.schedule.timezone).today().isoformat()])[0]
            species = (q.get("species") or [None])[0]
            raw_page = (q.get("page") or ["1"])[0]
            try:
                if not DAY_RX.fullmatch(day):
                    raise ValueError(day)
                dt.date.fromisoformat(day)
                page = int(raw_page)
                if not 1 <= page <= 100_000:
                    raise ValueError(raw_page)
            except ValueError:
                return self.refuse(HTTPStatus.BAD_REQUEST, "day must be YYYY-MM-DD and page "
                                   "a number from 1")
            sha = "" if store.health() else model_sha()
            body = page_html(store, cfg, sha, day, species, page).encode("utf-8")
            self.send(HTTPStatus.OK, body, "text/html; charset=utf-8")

        def not_allowed(self):
            self.refuse(HTTPStatus.METHOD_NOT_ALLOWED, "the dashboard only reads",
                        {"Allow": "GET, HEAD"})

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = not_allowed  # noqa: N815

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a request thread never keeps the process alive


class Server6(Server):
    address_family = socket.AF_INET6


def make_server(cfg: RecorderConfig) -> Server:
    """The server bound to ``[dashboard] address`` and ``port`` (refused again here if the
    address is not this machine's own and no password is set, whoever built the config)."""
    d = cfg.dashboard
    if d.password is None and not is_loopback(d.address):
        raise ConfigError(f"[dashboard] address = {d.address} needs password_hash")
    cls = Server6 if ":" in d.address else Server
    return cls((d.address, d.port), make_handler(cfg))


def start_thread(cfg: RecorderConfig) -> Server | None:
    """The dashboard as a daemon thread of the caller (the recorder): it ends with the
    process. A port in use is logged, not fatal: recording matters more than the page."""
    try:
        server = make_server(cfg)
    except OSError as exc:
        log.error("dashboard not started: %s:%d: %s", cfg.dashboard.address,
                  cfg.dashboard.port, exc.strerror or exc)
        return None
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    log.info("dashboard on http://%s:%d/%s", cfg.dashboard.address, cfg.dashboard.port,
             "" if cfg.dashboard.password is None else " (password set)")
    return server


def hash_password_command() -> int:
    """Print a ``password_hash = ...`` line for config.ini. Asks twice on a terminal; reads
    one line from standard input otherwise (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass("dashboard password: ")
        if getpass.getpass("again: ") != first:
            print("edgebird-dashboard: the two passwords differ", file=sys.stderr)
            return 2
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    try:
        line = make_hash(first).text()
    except PasswordHashError as exc:
        print(f"edgebird-dashboard: {exc}", file=sys.stderr)
        return 2
    print("# paste into config.ini under [dashboard], then restart the recorder:")
    print(f"password_hash = {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edgebird-dashboard", description="the field recorder's local web page "
        "(address, port and password in config.ini's [dashboard])")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--config", "-c", help="the recorder's config.ini: serve its data")
    group.add_argument("--hash-password", action="store_true",
                       help="make the password_hash line for config.ini and exit")
    args = parser.parse_args(argv)
    if args.hash_password:
        return hash_password_command()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config)
        server = make_server(cfg)
    except ConfigError as exc:
        print(f"edgebird-dashboard: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"edgebird-dashboard: cannot listen on {cfg.dashboard.address}:"
              f"{cfg.dashboard.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    host, port = server.server_address[:2]
    print(f"edgebird-dashboard: http://{host}:{port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
