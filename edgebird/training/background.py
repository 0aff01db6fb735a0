"""``--background DIR``: the deployment site's own sound, trained as background and measured.

The strongest defence against false positives on a real site is that site's sound (its
insects, its road, its other birds). Recordings known to lack the target species are embedded
through the same store as the labelled data (a rerun is a cache hit), every window of them.
The recordings are split once, seeded: about a quarter (``HELD_OUT_FRACTION``, at least one)
is held out and never trained on, by any fold or the final model; from the rest, at most
``background_windows`` windows are sampled (seeded) and join every training split as
all-zero rows of kind ``site``. The final model then scores every window of the held-out
recordings at the exported thresholds: false positives per hour of site audio, per class and
for any class, the figure a user deploying the model cares about. A folder of one recording
cannot hold any out: it all trains, and the report says there is no number.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgebird.audio import AudioSettings, find_audio_files
from edgebird.backbones import EmbeddingModel
from edgebird.pipeline import engine as eng
from edgebird.pipeline.embed import embed_files
from edgebird.training.dataset import DatasetError
from edgebird.training.features import Features

#: ``--background-windows``' default: site windows added to training at most.
DEFAULT_BACKGROUND_WINDOWS = 500
HELD_OUT_FRACTION = 0.25
SITE_KIND = "site"


@dataclass
class SiteBackground:
    """The site's windows: ``train`` (sampled, kind ``site``), ``held`` (every window of the
    held-out recordings, never trained on) and what the report says about them."""

    train: Features
    held: Features | None
    held_seconds: float
    recordings: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""  # why nothing is held out

    def describe(self) -> str:
        held = 0 if self.held is None else len(np.unique(self.held.groups))
        return (f"site background: {len(self.train)} windows sampled from "
                f"{self.recordings - held} recording(s) train as background; {held} "
                f"recording(s) ({self.held_seconds / 60:.1f} min) held out for false "
                "positives per hour" + (f" ({self.note})" if self.note else ""))


def _rows(entries: list, classes: list[str]) -> Features:
    xs, starts, files = [], [], []
    for e in entries:
        s, x = e.load()
        xs.append(x)
        starts.append(s)
        files += [e.source] * len(s)
    n = len(files)
    groups = np.array([f"site:{f}" for f in files]) if n else np.zeros(0, dtype=str)
    return Features(np.concatenate(xs).astype(np.float32) if xs else np.zeros((0, 0)),
                    np.zeros((n, len(classes)), dtype=np.float32), groups,
                    np.array(files, dtype=str), np.concatenate(starts) if starts else
                    np.zeros(0), np.full(n, SITE_KIND), list(classes))


def background_files(folder: str | os.PathLike) -> tuple[list, list]:
    """``find_audio_files`` of the background folder; DatasetError when it is missing or holds
    no audio (checked before any embedding starts)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"background folder not found: {folder}")
    found, problems = find_audio_files([folder])
    if not found:
        seen = [f"{Path(p).name}: {r}" for p, r in problems if Path(p) != folder][:3]
        raise DatasetError(f"background folder {folder} holds no audio files (WAV, FLAC, OGG, "
                           "MP3) that can be used" + (f" ({'; '.join(seen)})" if seen else "")
                           + ": add recordings from the site without the target species")
    return found, problems


def site_background(folder: str | os.PathLike, store: str | os.PathLike, audio: AudioSettings,
                    model: EmbeddingModel, classes: list[str], max_windows: int, seed: int,
                    engine: eng.EngineSettings = eng.EngineSettings(), progress: bool = True,
                    echo: Callable[[str], None] | None = None) -> SiteBackground:
    """Embed the site recordings in ``folder`` (all windows, cached in ``store``), hold out
    part of them by recording and sample at most ``max_windows`` training windows from the
    rest. Raises DatasetError for a missing folder, one without audio, or one whose files
    all fail; single unreadable files are listed in ``skipped`` and left out."""
    background_files(folder)
    summary = embed_files([str(folder)], store,
                          replace(audio, crop_mode="segments"), engine, model,
                          progress=progress, echo=echo)
    skipped = list(summary.failed)  # unreadable files, and what the folder walk could not use
    entries = sorted(summary.entries, key=lambda e: e.source)
    if not entries:
        why = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:5])
        raise DatasetError(f"none of the background recordings in {folder} could be read "
                           f"({why})")
    order = np.random.default_rng(seed).permutation(len(entries))
    n_held = int(round(len(entries) * HELD_OUT_FRACTION)) if len(entries) >= 2 else 0
    n_held = max(1, n_held) if len(entries) >= 2 else 0
    held_entries = [entries[i] for i in sorted(order[:n_held])]
    train_entries = [entries[i] for i in sorted(order[n_held:])]
    train = _rows(train_entries, classes)
    if len(train) > max_windows:
        pick = np.sort(np.random.default_rng(seed + 1).choice(len(train), max_windows,
                                                              replace=False))
        train = train.subset(pick)
    held = _rows(held_entries, classes) if held_entries else None
    note = "" if held_entries else (
        f"only {len(entries)} readable recording: none can be held out, so no false "
        "positives per hour are measured; add a second recording")
    return SiteBackground(train, held, float(sum(e.meta["duration"] for e in held_entries)),
                          len(entries), skipped, note)


def false_positives_per_hour(scores: np.ndarray, thresholds: np.ndarray, seconds: float,
                             classes: list[str]) -> dict:
    """Windows at or above each class's threshold per hour of audio, per class and for any
    class (a window firing two classes counts once there)."""
    fired = scores >= thresholds[None, :]
    hours = seconds / 3600.0
    return {"windows": int(len(scores)), "hours": hours,
            "any_per_hour": float(fired.any(axis=1).sum() / hours) if hours else float("nan"),
            "any_windows": int(fired.any(axis=1).sum()),
            "per_class_per_hour": {c: float(fired[:, i].sum() / hours) if hours else
                                   float("nan") for i, c in enumerate(classes)}}


def site_report(site: SiteBackground, scores: np.ndarray | None,
                thresholds: np.ndarray, classes: list[str]) -> dict:
    """What ``TrainResult.site_fp`` holds: the measurement, or the note saying why none."""
    base = {"recordings": site.recordings, "trained_windows": len(site.train),
            "skipped": [list(s) for s in site.skipped]}
    if site.held is None or scores is None:
        return {**base, "note": site.note}
    return {**base, "held_out_recordings": len(np.unique(site.held.groups)),
            **false_positives_per_hour(scores, thresholds, site.held_seconds, classes)}
