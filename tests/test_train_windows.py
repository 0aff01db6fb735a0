"""Issue 21 item 2: a long labelled recording trains on every window that holds its calls,
bounded per recording; short clips keep the smart crop."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from fakes import FakeModel

from edgebird.audio import AudioSettings, load, smart_starts, window_starts
from edgebird.pipeline.engine import EngineSettings
from edgebird.synth import SR, clip, noise, trill
from edgebird.training.dataset import scan_folder
from edgebird.training.features import build_features, window_counts
from edgebird.training.windows import choose_active, recording_activity

A, B = "Alpha a_A", "Beta b_B"
WIN = 3 * SR
#: window -> call amplitude: the calls of the long recording (20 windows, 60 s)
CALLS = {2: 0.3, 7: 0.5, 8: 0.2, 15: 0.6}
GUST = 11  # loud low-frequency noise (wind), no call


def long_recording(path, calls=CALLS, windows=20, seed=0):
    """Quiet pink noise, trills at known windows, and a loud wind gust (brown noise) in
    window ``GUST``, which must not count as sound of the species."""
    rng = np.random.default_rng(seed)
    x = 0.01 * noise(windows * WIN, rng)
    x[GUST * WIN:(GUST + 1) * WIN] += 0.3 * noise(WIN, rng, "brown")
    for w, amp in calls.items():
        s = trill(rng) * amp
        at = w * WIN + SR
        x[at:at + len(s)] += s
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(x, -1, 1).astype(np.float32), SR, subtype="PCM_16")
    return path


def short_clip(path, label, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, clip(label, np.random.default_rng(seed), 6.0), SR, subtype="PCM_16")
    return path


def test_the_kept_windows_are_the_call_windows_and_the_cap_keeps_the_strongest(tmp_path):
    path = long_recording(tmp_path / "long.wav")
    starts, act = recording_activity(str(path), AudioSettings(crop_mode="smart"))
    assert len(starts) == 20
    assert choose_active(act, 20).tolist() == sorted(CALLS)  # the gust is not a call
    assert choose_active(act, 2).tolist() == [7, 15]  # the two loudest calls
    # the smart crop alone keeps local maxima only: one of the adjacent calls 7, 8 is lost
    audio = AudioSettings()
    x = load(path, audio)
    grid = window_starts(len(x), audio)
    smart = smart_starts(np.stack([x[s:s + WIN] for s in grid]), grid) // WIN
    assert set(smart) < set(CALLS) | {GUST}


def test_a_flat_recording_keeps_its_strongest_third(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "flat.wav"
    sf.write(path, (0.05 * noise(9 * WIN, rng, "white")).astype(np.float32), SR)
    _, act = recording_activity(str(path), AudioSettings())
    kept = choose_active(act, 20)
    assert len(kept) == 3  # max(3, 9 // 3), as the smart crop's flat rule
    assert len(choose_active(act, 2)) == 2


def _features(tmp_path, max_windows):
    root = tmp_path / "data"
    long_recording(root / A / "long.wav")
    for i in range(2):
        short_clip(root / A / f"a{i}.wav", "Synthetic triller_Triller", i)
        short_clip(root / B / f"b{i}.wav", "Synthetic whistler_Whistler", 10 + i)
    ts = scan_folder(root)
    feats = build_features(ts, tmp_path / "store", AudioSettings(crop_mode="smart"),
                           FakeModel(), EngineSettings(workers=1), progress=False,
                           max_windows=max_windows)
    return root, feats


def test_training_keeps_a_long_recordings_call_windows_bounded_and_reports_them(tmp_path):
    root, feats = _features(tmp_path, 20)
    long = str(root / A / "long.wav")
    rows = feats.files == long
    assert (feats.starts[rows] / 3).round().astype(int).tolist() == sorted(CALLS)
    assert feats.selected[long] == (4, 4, 20)
    text = window_counts(feats, 20)
    n_a = int((feats.y[:, 0] > 0.5).sum())
    assert f"{A}: {n_a} windows from 3 recordings" in text
    assert "1 long recording(s) (>= 5 windows): 4 of their 20 windows kept" in text
    # short clips keep the smart crop's pick, exactly
    audio = AudioSettings()
    for f in (root / B / "b0.wav", root / A / "a1.wav"):
        x = load(f, audio)
        grid = window_starts(len(x), audio)
        windows = np.stack([np.pad(x[s:s + WIN], (0, max(0, s + WIN - len(x)))) for s in grid])
        want = smart_starts(windows, grid) / SR
        assert np.allclose(np.sort(feats.starts[feats.files == str(f)]), want)

    _, capped = _features(tmp_path / "capped", 2)
    rows = capped.files == str(tmp_path / "capped" / "data" / A / "long.wav")
    assert (capped.starts[rows] / 3).round().astype(int).tolist() == [7, 15]
    assert "1 recording(s) hit the cap" in window_counts(capped, 2)


@pytest.mark.parametrize("mode", ["segments", "center"])
def test_other_crop_modes_and_a_zero_cap_are_unchanged(tmp_path, mode):
    root = tmp_path / "data"
    long_recording(root / A / "long.wav")
    short_clip(root / B / "b0.wav", "Synthetic whistler_Whistler", 1)
    ts = scan_folder(root)
    feats = build_features(ts, tmp_path / "store", AudioSettings(crop_mode=mode),
                           FakeModel(), EngineSettings(workers=1), progress=False)
    n = int((feats.files == str(root / A / "long.wav")).sum())
    assert n == (20 if mode == "segments" else 1) and not feats.selected
    off = build_features(ts, tmp_path / "store", AudioSettings(crop_mode="smart"),
                         FakeModel(), EngineSettings(workers=1), progress=False,
                         max_windows=0)
    assert not off.selected
    assert int((off.files == str(root / A / "long.wav")).sum()) <= 5  # the smart crop
