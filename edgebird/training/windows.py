"""Which windows of a long labelled recording train: every one that holds sound, bounded.

The smart crop (``audio.smart_starts``) keeps a clip's few loudest local maxima: right for a
focal clip of a few seconds, but a whole 20- to 160-s Xeno-canto recording labelled as one
species then gives two or three windows, and most of the species' calls are thrown away. So a
whole-file label on a recording of at least ``LONG_RECORDING_WINDOWS`` windows keeps every
window whose bird-band activity stands out from the recording's own floor, at most
``max_windows`` of them (the strongest), so one long file does not swamp its class. Shorter
clips keep the smart crop's pick, exactly as before.

Activity is measured in the bird band (``BIRD_BAND``), not broadband as the smart crop's RMS:
wind and traffic put their energy below 1 kHz, and a broadband level would call a gust a song.
Per 1024-sample frame, the band's energy in dB; a window's activity is its 90th-percentile
frame, the recording's floor its 20th-percentile frame (birds pause between syllables, so the
low frames are the background even in a recording full of song).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgebird.audio import AudioError, AudioSettings, iter_windows, probe, window_starts

#: A whole-file label on a file of at least this many windows uses the activity rule.
LONG_RECORDING_WINDOWS = 5
#: ``--max-windows-per-recording``'s default (60 s of a long recording).
DEFAULT_MAX_WINDOWS = 20
BIRD_BAND = (1000.0, 10000.0)  # Hz
FRAME = 1024
#: A window holds sound when its loud frames are this far above the recording's floor.
ACTIVE_DB = 6.0
FLOOR_PERCENTILE, WINDOW_PERCENTILE = 20, 90
#: Frames at or below this (digital silence, the zero padding of a last window) are not floor.
SILENT_DB = -100.0


def band_frames_db(window: np.ndarray, sample_rate: int) -> np.ndarray:
    """Bird-band energy (dB) of each ``FRAME``-sample frame of one window."""
    n = len(window) // FRAME * FRAME
    frames = window[:n].astype(np.float64).reshape(-1, FRAME) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate)
    band = (freqs >= BIRD_BAND[0]) & (freqs < BIRD_BAND[1])
    return 10.0 * np.log10(power[:, band].sum(axis=1) / FRAME + 1e-12)


def activity(frames_db: np.ndarray) -> np.ndarray:
    """dB above the recording's floor, per window (``frames_db``: [windows, frames])."""
    audible = frames_db[frames_db > SILENT_DB]
    floor = float(np.percentile(audible, FLOOR_PERCENTILE)) if len(audible) else SILENT_DB
    return np.percentile(frames_db, WINDOW_PERCENTILE, axis=1) - floor


def choose_active(act: np.ndarray, max_windows: int) -> np.ndarray:
    """Indices (in time order) of the windows that hold sound, the strongest ``max_windows``
    when more do. A recording with no window above its floor (a flat one) keeps its strongest
    ``max(3, n // 3)``, capped, as the smart crop does for a flat clip."""
    active = np.flatnonzero(act >= ACTIVE_DB)
    if not len(active):
        active = np.argsort(act)[::-1][:max(3, len(act) // 3)]
    if len(active) > max_windows:
        active = active[np.argsort(act[active], kind="stable")[::-1][:max_windows]]
    return np.sort(active)


def recording_activity(path: str, audio: AudioSettings) -> tuple[np.ndarray, np.ndarray]:
    """``(starts in seconds, activity in dB)`` of every ``segments`` window of a file, decoded
    one block at a time (memory stays flat in the recording's length)."""
    grid_audio = replace(audio, crop_mode="segments")
    info = probe(path)
    grid = window_starts(info.target_samples(audio.sample_rate), grid_audio)
    db = np.stack([band_frames_db(w, audio.sample_rate)
                   for _, w in iter_windows(info, grid_audio, grid)])
    return grid / audio.sample_rate, activity(db)


def long_recordings(paths: list[str], audio: AudioSettings) -> set[str]:
    """The files (of ``paths``) long enough for the activity rule; a file whose header cannot
    be read is left to the embedding step, which reports it."""
    out = set()
    for p in paths:
        try:
            n = len(window_starts(probe(p).target_samples(audio.sample_rate),
                                  replace(audio, crop_mode="segments")))
        except (AudioError, OSError):
            continue
        if n >= LONG_RECORDING_WINDOWS:
            out.add(p)
    return out


def select_windows(path: str, starts: np.ndarray, audio: AudioSettings,
                   max_windows: int) -> tuple[np.ndarray, int]:
    """The rows of ``starts`` (a file's ``segments`` windows, seconds) to train on, and how
    many windows held sound before the cap."""
    grid, act = recording_activity(path, audio)
    chosen = grid[choose_active(act, max_windows)]
    held = int((act >= ACTIVE_DB).sum())
    rows = np.flatnonzero(np.isin(np.round(starts, 4), np.round(chosen, 4)))
    return rows, held
