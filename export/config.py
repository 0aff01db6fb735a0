"""The recorder's configuration: one INI file (comments allowed), checked completely at start.

INI rather than TOML because Raspberry Pi OS Bullseye ships Python 3.9 (no ``tomllib``).
Relative paths are relative to the config file, so a kit can be moved as a whole.
"""

from __future__ import annotations

import configparser
import datetime as dt
import difflib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgebird.export.archive import MODES, ArchiveSettings
from edgebird.export.passwords import PasswordHash, PasswordHashError, parse_hash
from edgebird.export.schedule import Schedule, ScheduleError, parse_windows

SOURCES = ("soundcard", "arecord", "file")


class ConfigError(Exception):
    """A problem in the configuration or the model files: the message says what to fix."""


@dataclass(frozen=True)
class DashboardConfig:
    """``[dashboard]``: the local web page (``edgebird.export.dashboard``)."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 8080
    password: PasswordHash | None = None

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address)


def is_loopback(address: str) -> bool:
    """Whether ``address`` is reachable from this machine only (127.0.0.0/8, ::1,
    ``localhost``)."""
    import ipaddress

    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class RecorderConfig:
    model: Path
    labels: Path
    thresholds: Path | None
    species_list: Path | None
    data_dir: Path
    source: str = "soundcard"
    device: str = ""
    input_path: str = ""
    realtime: bool = False
    sample_rate: int = 48000
    overlap: float = 0.0
    sensitivity: float = 1.0
    min_conf: float | None = None
    threads: int = 1
    clips: bool = True
    clip_pre: float = 1.0
    clip_post: float = 1.0
    min_free_mb: float = 500.0
    station: str = "edgebird"
    health_every: float = 10.0
    schedule: Schedule = field(default_factory=Schedule)
    check_ntp: bool = True
    jump_s: float = 2.0
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)


#: The commented ``config.ini`` a kit ships, with ``{model}``, ``{labels}``, ``{thresholds}``,
#: ``{species_list}`` and ``{station}`` to fill in: a data file beside this module, so
#: ``edgebird deploy`` reads it without importing the recorder.
TEMPLATE_FILE = Path(__file__).with_name("config.ini.template")
TEMPLATE = TEMPLATE_FILE.read_text(encoding="utf-8")


def _known_keys() -> dict[str, set[str]]:
    """Sections and keys the recorder reads: the shipped template's, so the template is the
    one list of what a configuration may contain."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(TEMPLATE)
    return {s: set(parser.options(s)) for s in parser.sections()}


KNOWN = _known_keys()


def _line_of(text: list[str], pattern: str) -> int:
    """The 1-based line where ``pattern`` (a regex) first matches, 0 if nowhere."""
    rx = re.compile(pattern, re.IGNORECASE)
    return next((i for i, ln in enumerate(text, 1) if rx.match(ln)), 0)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_known(path: Path, parser: configparser.ConfigParser) -> None:
    """Refuse sections and keys the recorder does not read: a misspelling (``sensitivty``,
    ``[detektion]``) would otherwise leave the default in force without a word."""
    lines = path.read_text(encoding="utf-8").splitlines()
    extra_defaults = list(parser.defaults())
    if extra_defaults:
        line = _line_of(lines, r"\s*\[DEFAULT\]")
        raise ConfigError(f"{path} line {line}: section "
                          f"[DEFAULT] is not used by the recorder; put each key in its "
                          f"section ({', '.join('[' + s + ']' for s in KNOWN)})")
    for section in parser.sections():
        if section not in KNOWN:
            line = _line_of(lines, rf"\s*\[{re.escape(section)}\]")
            raise ConfigError(
                f"{path} line {line}: unknown section [{section}]{_suggest(section, KNOWN)}; "
                f"the recorder reads {', '.join('[' + s + ']' for s in KNOWN)}")
        for key in parser.options(section):
            if key not in KNOWN[section]:
                start = _line_of(lines, rf"\s*\[{re.escape(section)}\]")
                line = _line_of(lines[start:], rf"\s*{re.escape(key)}\s*[=:]")
                line = start + line if line else start
                raise ConfigError(
                    f"{path} line {line}: unknown key '{key}' in [{section}]"
                    f"{_suggest(key, KNOWN[section])}; keys of [{section}]: "
                    f"{', '.join(sorted(KNOWN[section]))}")


def check_writable(folder: Path) -> None:
    """``[output] data_dir`` must be a folder the recorder can write, checked at start (a
    failure after "started" would be a crash loop under systemd)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"[output] data_dir: {folder} cannot be written "
                          f"({exc.strerror or exc}): choose a folder the recorder's user "
                          "can write, or fix its permissions") from None


def _path(base: Path, value: str) -> Path | None:
    value = value.strip()
    if not value:
        return None
    p = Path(os.path.expanduser(value))
    return p if p.is_absolute() else (base / p)


def load_config(path: str | os.PathLike) -> RecorderConfig:
    """Read and check the whole configuration; every problem is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise ConfigError(f"{path}: not a valid configuration file ({exc})") from None
    check_known(path, parser)
    base = path.parent

    def get(section: str, key: str, default: str = "") -> str:
        return parser.get(section, key, fallback=default).strip()

    def number(section: str, key: str, default: str, kind=float, lo=None, hi=None):
        raw = get(section, key, default)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"[{section}] {key} = {raw!r} is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"[{section}] {key} = {raw!r} must be a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"[{section}] {key} = {raw} must be in [{lo}, {hi}]")
        return value

    def flag(section: str, key: str, default: str) -> bool:
        raw = get(section, key, default).lower()
        if raw not in ("yes", "no", "true", "false", "1", "0", "on", "off"):
            raise ConfigError(f"[{section}] {key} = {raw!r}: use yes or no")
        return raw in ("yes", "true", "1", "on")

    model = _path(base, get("model", "file"))
    if model is None or not model.is_file():
        raise ConfigError(f"[model] file: model not found: {model}")
    labels = _path(base, get("model", "labels")) or Path(f"{model.with_suffix('')}_Labels.txt")
    if not labels.is_file():
        raise ConfigError(f"[model] labels: labels file not found: {labels}")
    thresholds = _path(base, get("model", "thresholds"))
    if thresholds is not None and not thresholds.is_file():
        raise ConfigError(f"[model] thresholds: file not found: {thresholds}")
    species = _path(base, get("model", "species_list"))
    if species is not None and not species.is_file():
        raise ConfigError(f"[model] species_list: file not found: {species}")
    source = get("audio", "source", "soundcard").lower()
    if source not in SOURCES:
        raise ConfigError(f"[audio] source = {source!r}: use one of {', '.join(SOURCES)}")
    input_path = get("audio", "input")
    if source == "file":
        resolved = _path(base, input_path)
        if resolved is None or not resolved.exists():
            raise ConfigError(f"[audio] input: recording or folder not found: {resolved}")
        input_path = str(resolved)
    min_conf_raw = get("detection", "min_conf")
    data_dir = _path(base, get("output", "data_dir", "data")) or base / "data"
    check_writable(data_dir)
    schedule = _schedule(get, number)
    return RecorderConfig(
        model=model, labels=labels, thresholds=thresholds, species_list=species,
        data_dir=data_dir, source=source, device=get("audio", "device"),
        input_path=input_path, realtime=flag("audio", "realtime", "no"),
        overlap=number("detection", "overlap", "0", float, 0.0, 2.9),
        sensitivity=number("detection", "sensitivity", "1.0", float, 0.5, 1.5),
        min_conf=number("detection", "min_conf", min_conf_raw, float, 0.0, 1.0)
        if min_conf_raw else None,
        threads=number("detection", "threads", "1", int, 1, 8),
        clips=flag("output", "clips", "yes"),
        clip_pre=number("output", "clip_pre", "1.0", float, 0.0, 30.0),
        clip_post=number("output", "clip_post", "1.0", float, 0.0, 30.0),
        min_free_mb=number("output", "min_free_mb", "500", float, 0.0, None),
        station=get("output", "station", "edgebird") or "edgebird",
        schedule=schedule, check_ntp=flag("clock", "check_ntp", "yes"),
        jump_s=number("clock", "jump_s", "2", float, 0.1, 3600.0),
        dashboard=_dashboard(get, number, flag),
        archive=_archive(get, number, flag),
    )


def _dashboard(get, number, flag) -> DashboardConfig:
    """``[dashboard]``: an address other than this machine's own needs a password, so the
    detections, clips and health of a station are never open to its whole network."""
    default = DashboardConfig()
    address = get("dashboard", "address", default.address) or default.address
    raw_hash = get("dashboard", "password_hash")
    password = None
    if raw_hash:
        try:
            password = parse_hash(raw_hash)
        except PasswordHashError as exc:
            raise ConfigError(f"[dashboard] password_hash: {exc}") from None
    if password is None and not is_loopback(address):
        raise ConfigError(f"[dashboard] address = {address} opens the dashboard to the "
                          "network: set password_hash (make it with edgebird-dashboard "
                          "--hash-password), or use address = 127.0.0.1")
    return DashboardConfig(
        enabled=flag("dashboard", "enabled", "yes" if default.enabled else "no"),
        address=address, port=number("dashboard", "port", str(default.port), int, 1, 65535),
        password=password)


def _archive(get, number, flag) -> ArchiveSettings:
    """``[archive]``; an empty limit means none."""
    d = ArchiveSettings()
    mode = get("archive", "mode", d.mode).lower()
    if mode not in MODES:
        raise ConfigError(f"[archive] mode = {mode!r}: use one of {', '.join(MODES)}")

    def limit(key: str):
        return number("archive", key, "", float, 0.0, None) if get("archive", key) else None

    return ArchiveSettings(
        enabled=flag("archive", "enabled", "yes" if d.enabled else "no"), mode=mode,
        period_s=number("archive", "period_s", str(d.period_s), float, 10.0, 86400.0),
        max_gb=limit("max_gb"), max_days=limit("max_days"))


def _timezone(name: str):
    """``UTC`` or an IANA zone from the system's tz database (zoneinfo: Python 3.9+)."""
    if name.upper() == "UTC":
        return dt.timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[schedule] timezone = {name!r} is not a known time zone: use an "
                          "IANA name such as Europe/Berlin, or UTC (the tzdata package "
                          "provides them)") from None


def _schedule(get, number) -> Schedule:
    """``[schedule]``, checked whole: a window the recorder cannot compute stops it at start."""
    try:
        windows = parse_windows(get("schedule", "windows"))
    except ScheduleError as exc:
        raise ConfigError(f"[schedule] windows: {exc}") from None
    on = number("schedule", "duty_on", "60", float, 1.0, 86400.0)
    off = number("schedule", "duty_off", "0", float, 0.0, 86400.0)
    lat = lon = None
    if get("schedule", "latitude") or get("schedule", "longitude"):
        lat = number("schedule", "latitude", "", float, -90.0, 90.0)
        lon = number("schedule", "longitude", "", float, -180.0, 180.0)
    schedule = Schedule(on, off, windows, _timezone(get("schedule", "timezone", "UTC")
                                                    or "UTC"), lat, lon)
    if schedule.uses_sun:
        if lat is None:
            raise ConfigError("[schedule] windows use sunrise/sunset: set latitude and "
                              "longitude (decimal degrees) of the recorder's place")
        try:
            import astral  # noqa: F401 - the kit installs it; a hand-made venv may not
        except ImportError:
            raise ConfigError("[schedule] sunrise/sunset windows need the astral package: "
                              "pip install astral") from None
    return schedule
