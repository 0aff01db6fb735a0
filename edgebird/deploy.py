"""``edgebird deploy``: a self-contained field-recorder kit for a Raspberry Pi.

The kit (a .tar.gz) holds the standalone model with its labels, thresholds and params, an
optional species list, the recorder runtime as an installable package (``edgebird-field``:
the recorder plus ``edgebird.core``, the kit core it shares with ``analyze``: scores, writers,
files, labels, runtime, so scoring and tables are the same code, not a copy), a commented
``config.ini``, a systemd unit, ``install.sh`` and a README. The runtime's only dependencies
are numpy, soundfile and ai-edge-litert (tflite-runtime where that is what the Pi has), all
available as wheels for Raspberry Pi OS, so installing compiles nothing.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from edgebird import __version__
from edgebird.core.files import atomic_write_bytes
from edgebird.core.labels import write_labels

#: What the kit ships of edgebird: the package marker and the kit core, whole and unchanged
#: (Python 3.9, numpy only: an import-linter contract keeps it so).
SHARED = ["__init__.py", "core"]
#: The recorder's commented config.ini, read as a file: nothing in edgebird imports the
#: recorder (an import-linter contract), not even for its template.
CONFIG_TEMPLATE = "config.ini.template"
RUNTIME = ["__init__.py", "config.py", "sources.py", "schedule.py", "archive.py",
           "recorder.py", "passwords.py", "spectrogram.py", "dashboard.py", CONFIG_TEMPLATE]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "edgebird-field"
version = "{version}"
description = "edgebird's field recorder: a custom bird classifier on live audio, no TensorFlow"
requires-python = ">=3.9"
# astral: sunrise/sunset for [schedule] windows (pure Python, a py3 wheel)
dependencies = ["numpy>=1.21", "soundfile>=0.10", "astral>=3.2"]

[project.optional-dependencies]
# the interpreter: ai-edge-litert on 64-bit Raspberry Pi OS; tflite-runtime on older images
litert = ["ai-edge-litert>=1.2"]
soundcard = ["sounddevice>=0.4"]

[project.scripts]
edgebird-recorder = "edgebird.export.recorder:main"
edgebird-dashboard = "edgebird.export.dashboard:main"

[tool.setuptools]
packages = [{packages}]

[tool.setuptools.package-data]
"edgebird.export" = ["{template}"]
"""

UNIT = """\
[Unit]
Description=edgebird field recorder
After=sound.target network.target
StartLimitIntervalSec=0

[Service]
Type=simple
User={user}
WorkingDirectory={home}
ExecStart={home}/venv/bin/edgebird-recorder --config {home}/config.ini
Restart=always
RestartSec=10
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=multi-user.target
"""

INSTALL = """\
#!/usr/bin/env bash
# Install (or update) the edgebird field recorder from this kit. Run from the kit's folder:
#   sudo ./install.sh            (installs to /opt/edgebird and starts the service)
# Needs python3-venv; installs wheels only (nothing is compiled).
set -euo pipefail
HOME_DIR="${EDGEBIRD_HOME:-/opt/edgebird}"
RUN_USER="${EDGEBIRD_USER:-${SUDO_USER:-pi}}"
KIT="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$HOME_DIR"
python3 -m venv "$HOME_DIR/venv"
"$HOME_DIR/venv/bin/pip" install -q --upgrade pip
if ! "$HOME_DIR/venv/bin/pip" install -q --only-binary=:all: "$KIT/runtime[litert]"; then
    echo "ai-edge-litert has no wheel here; trying tflite-runtime (old Raspberry Pi OS)"
    "$HOME_DIR/venv/bin/pip" install -q --only-binary=:all: "$KIT/runtime" "tflite-runtime" \\
        "numpy<2"
fi
"$HOME_DIR/venv/bin/pip" install -q --only-binary=:all: sounddevice \\
    || echo "sounddevice not installed: set source = arecord in config.ini"
rm -rf "$HOME_DIR/model" && cp -r "$KIT/model" "$HOME_DIR/model"
[ -f "$KIT/species_list.txt" ] && cp "$KIT/species_list.txt" "$HOME_DIR/"
# keep an edited config on update
[ -f "$HOME_DIR/config.ini" ] || cp "$KIT/config.ini" "$HOME_DIR/config.ini"
mkdir -p "$HOME_DIR/data"
chown -R "$RUN_USER" "$HOME_DIR/data" "$HOME_DIR/config.ini" 2>/dev/null || true
if [ "${EDGEBIRD_NO_SYSTEMD:-0}" != 1 ] && command -v systemctl >/dev/null; then
    sed "s#{home}#$HOME_DIR#g; s#{user}#$RUN_USER#g" "$KIT/edgebird-recorder.service" \\
        > /etc/systemd/system/edgebird-recorder.service
    systemctl daemon-reload
    systemctl enable --now edgebird-recorder
    systemctl restart edgebird-recorder
fi
echo "installed in $HOME_DIR; health: $HOME_DIR/data/health.json"
"""

README = """\
# edgebird field recorder kit: {name}

Model: `{model}` ({n} classes), built by edgebird {version} on {date}.

## Install (Raspberry Pi OS, 64-bit recommended; Pi 4 or 5)

```bash
sudo apt install python3-venv libportaudio2 alsa-utils
tar xzf {kit} && cd {stem}
sudo ./install.sh
```

It creates `/opt/edgebird/` (a virtualenv, the model, `config.ini`, `data/`), installs the
`edgebird-recorder` systemd service and starts it. Edit `/opt/edgebird/config.ini` (every
setting is explained there: sound card, sensitivity, thresholds, clips, disk guard, the
raw archive, the schedule and the clock check), then
`sudo systemctl restart edgebird-recorder`. Check it with `cat /opt/edgebird/data/health.json`
and `journalctl -u edgebird-recorder`.

What it writes in `/opt/edgebird/data/`: `detections.sqlite` (time, species, confidence, model
and its SHA-256, clip, clock flag), `clips/<day>/<species>/*.flac`, `tables/<day>.BirdNET.*`
(Raven and CSV, per UTC day), `archive/<UTC start>.flac` when `[archive] enabled = yes`,
`health.json` (uptime, last detection, lag, disk, archive, schedule and its next window,
clock), `recorder.log`.

Raw archive (`[archive]`): FLAC files per period (`period_s`) named by the UTC time of their
first sample (`20260601T043000Z.flac`), of the scheduled windows only (`mode = scheduled`) or
of everything (`mode = all`), with their own retention (`max_gb`, `max_days`); when the disk is
low the oldest archive files go first, then clips, never the database. Take the card's `data/`
home and run `edgebird collect data/ -o season/`.

Schedule (`[schedule]` in `config.ini`): daily windows such as `05:00..09:00` or
`sunrise-30..sunrise+120` (set `latitude`, `longitude` and `timezone`), and a duty cycle
(`duty_on = 60`, `duty_off = 240`); outside the schedule no window is scored.

Time: detection times are the stream's start by the system clock plus its sample count. A Pi
has no battery clock: without network time it starts at its last shutdown time. Each row's
`clock` column says `synced`, `unknown` (systemd cannot say), `unsynced` or `jumped` (the clock
stepped during that stream); `health.json` shows the same under `clock`.

Try it without a microphone: set `source = file` and `input = /path/to/recordings` (48 kHz).

## Dashboard

A small web page of the detections (today, this week, per species per hour), each clip with
its spectrogram and a player, the recorder's health and the model's SHA-256. Set
`enabled = yes` under `[dashboard]` in `config.ini` and restart: the recorder serves it on
`http://127.0.0.1:8080/` (this Pi only; from a laptop: `ssh -L 8080:127.0.0.1:8080 pi@station`
and open that address). For the whole network set `address = 0.0.0.0` and a password:
`/opt/edgebird/venv/bin/edgebird-dashboard --hash-password` prints a `password_hash = ...` line
to paste under `[dashboard]` (the recorder refuses another address without one). It is plain
HTTP: a trusted network only. Without the recorder:
`/opt/edgebird/venv/bin/edgebird-dashboard --config /opt/edgebird/config.ini`.

## Update

Build a new kit with `edgebird deploy`, copy it over, `sudo ./install.sh` again: the model and
runtime are replaced, your `config.ini` and `data/` are kept.

## Uninstall

```bash
sudo systemctl disable --now edgebird-recorder
sudo rm /etc/systemd/system/edgebird-recorder.service && sudo systemctl daemon-reload
sudo rm -rf /opt/edgebird        # deletes the detections and clips too
```
"""


#: The station name in the kit's tables and health file (the recorder's own default too).
DEFAULT_STATION = "edgebird"


def _source_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{package} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _packages(folder: Path, name: str) -> list[str]:
    """``name`` and its subpackages under ``folder``: the kit installs the core whole, however
    it is divided."""
    return [name] + [f"{name}.{'.'.join(p.parent.relative_to(folder).parts)}"
                     for p in sorted(folder.rglob("*/__init__.py"))]


def build_kit(model_dir: str | os.PathLike, out: str | os.PathLike,
              species_list: str | os.PathLike | None = None, station: str = DEFAULT_STATION,
              name: str | None = None, location=None) -> Path:
    """Write the kit to ``out`` (.tar.gz, atomically). ValueError for a model that cannot be
    deployed (not standalone, labels missing or mismatched).

    ``location`` (a ``species.Location``) bakes BirdNET's location/week filter into the kit as
    a species list (the Pi then needs no meta-model); custom classes that are not BirdNET
    labels are kept, as ``analyze`` does."""
    import datetime as dt

    from edgebird.pipeline.models import classifier_files

    files = classifier_files(model_dir)
    if files.kind != "standalone":
        raise ValueError(f"{files.model.name} is a head-only model; the recorder needs the "
                         "standalone model (audio in), e.g. CustomClassifier.tflite")
    if species_list and location is not None:
        raise ValueError("give a species list or a location, not both")
    baked = None
    if location is not None:
        from edgebird.species import birdnet_labels, species_at

        here = {lab for lab, _ in species_at(location)}
        known = set(birdnet_labels())
        baked = [lab for lab in files.labels if lab in here or lab not in known]
        if not baked:
            raise ValueError("none of the model's classes is expected at that place and week")
    out = Path(out)
    stem = name or out.name.removesuffix(".tar.gz").removesuffix(".tgz")
    with tempfile.TemporaryDirectory() as tmp:
        kit = Path(tmp) / stem
        (kit / "model").mkdir(parents=True)
        model_stem = files.model.with_suffix("")
        for suffix in (".tflite", "_Labels.txt", "_Thresholds.csv", "_Params.csv"):
            f = Path(f"{model_stem}{suffix}")
            if f.is_file():
                shutil.copy2(f, kit / "model" / f.name)
        if species_list:
            shutil.copy2(species_list, kit / "species_list.txt")
        elif baked is not None:
            write_labels(kit / "species_list.txt", baked, comment=(
                f"BirdNET's location/week filter at {location.lat}, {location.lon}, week "
                f"{location.week}, threshold {location.threshold}"))
        runtime = kit / "runtime"
        core, field = _source_dir("edgebird"), _source_dir("edgebird.export")
        for rel in SHARED:
            src, dst = core / rel, runtime / "edgebird" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        for rel in RUNTIME:
            (runtime / "edgebird" / "export").mkdir(parents=True, exist_ok=True)
            shutil.copy2(field / rel, runtime / "edgebird" / "export" / rel)
        packages = ["edgebird", *_packages(runtime / "edgebird" / "core", "edgebird.core"),
                    "edgebird.export"]
        (runtime / "pyproject.toml").write_text(PYPROJECT.format(
            version=__version__, packages=", ".join(f'"{p}"' for p in packages),
            template=CONFIG_TEMPLATE))
        template = (field / CONFIG_TEMPLATE).read_text(encoding="utf-8")
        thr = Path(f"{model_stem.name}_Thresholds.csv")
        (kit / "config.ini").write_text(template.format(
            model=f"model/{files.model.name}", labels=f"model/{model_stem.name}_Labels.txt",
            thresholds=f"model/{thr}" if (kit / "model" / thr).is_file() else "",
            species_list="species_list.txt" if (species_list or baked) else "",
            station=station))
        (kit / "edgebird-recorder.service").write_text(UNIT)
        install = kit / "install.sh"
        install.write_text(INSTALL)
        install.chmod(0o755)
        (kit / "README.md").write_text(README.format(
            name=stem, model=files.model.name, n=len(files.labels), version=__version__,
            date=dt.date.today().isoformat(), kit=out.name, stem=stem))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(kit, arcname=stem)
        atomic_write_bytes(out, buf.getvalue())
    return out
