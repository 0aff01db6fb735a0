"""The recorder's configuration: one INI file (comments allowed), checked completely at start.

INI rather than TOML because Raspberry Pi OS Bullseye ships Python 3.9 (no ``tomllib``).
Relative paths are relative to the config file, so a kit can be moved as a whole.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path

SOURCES = ("soundcard", "arecord", "file")


class ConfigError(Exception):
    """A problem in the configuration or the model files: the message says what to fix."""


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


TEMPLATE = """\
# edgebird field recorder. Lines starting with # are comments; relative paths are relative
# to this file. Restart the service after a change: sudo systemctl restart edgebird-recorder

[model]
# the standalone classifier (audio in, one score per class) and its labels, from edgebird train
file = {model}
labels = {labels}
# per-class score thresholds chosen in training (delete the line to use min_conf for all)
thresholds = {thresholds}
# only these species are reported (one label per line); delete the line to report all
species_list = {species_list}

[detection]
# 0.5-1.5; BirdNET-Analyzer 2.x's logit shift: sigmoid(logit + (S-1)*10)
sensitivity = 1.0
# one threshold for every class (0-1); leave empty to use the thresholds file
min_conf =
# overlap of consecutive 3-s windows in seconds (0 <= overlap < 3); more costs CPU
overlap = 0.0
# interpreter threads (1 is the most efficient; 2 gives a Pi 4 more headroom)
threads = 1

[audio]
# soundcard (via the sounddevice package), arecord (ALSA's recorder), or file (replay)
source = soundcard
# soundcard: a sounddevice device name or number; arecord: an ALSA device such as hw:1,0;
# empty = the default input
device =
# file source only: a recording or a folder of recordings, replayed as if live
input =
# file source only: replay at the speed of the clock (yes) or as fast as possible (no)
realtime = no

[output]
# everything the recorder writes: detections.sqlite, clips/, tables/, health.json, logs
data_dir = data
# save a FLAC clip of every detection, with this much context before and after (seconds)
clips = yes
clip_pre = 1.0
clip_post = 1.0
# keep at least this much disk free (MB): the oldest clips are deleted first, never the database
min_free_mb = 500
# name written into tables and the health file
station = {station}
"""


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
    base = path.parent

    def get(section: str, key: str, default: str = "") -> str:
        return parser.get(section, key, fallback=default).strip()

    def number(section: str, key: str, default: str, kind=float, lo=None, hi=None):
        raw = get(section, key, default)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigError(f"[{section}] {key} = {raw!r} is not a number") from None
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
    )
