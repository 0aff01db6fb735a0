"""Audio loading, resampling, framing and crop modes on audio made in code."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf
import soxr
from conftest import chirp

from edgebird.audio import (
    SAMPLE_RATE,
    AudioError,
    AudioSettings,
    find_audio_files,
    iter_windows,
    load,
    notes_for,
    planned_starts,
    probe,
    smart_starts,
    window_starts,
)

SR = SAMPLE_RATE
SEC = SR  # samples per second at the target rate


def reference_windows(path, settings: AudioSettings) -> tuple[np.ndarray, np.ndarray]:
    """Independent whole-file path: read all, downmix, one-shot resample, frame by slicing."""
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = x.mean(axis=1)
    if sr != SR:
        mono = soxr.resample(mono, sr, SR)
    n = len(x) * SR // sr
    mono = np.pad(mono, (0, max(0, n - len(mono))))[:n]
    starts = window_starts(n, settings)
    seg = settings.segment_samples
    wins = np.zeros((len(starts), seg), dtype=np.float32)
    for i, s in enumerate(starts):
        piece = mono[s:s + seg]
        wins[i, :len(piece)] = piece
    return starts, wins


class TestFraming:
    @pytest.mark.parametrize(
        ("seconds", "overlap", "expected"),
        [
            (0.0, 0.0, []),
            (0.99, 0.0, []),
            (1.0, 0.0, [0]),  # exactly the minimum: kept, zero-padded
            (3.0, 0.0, [0]),
            (3.5, 0.0, [0]),  # 0.5 s tail dropped
            (4.0, 0.0, [0, 3]),  # 1.0 s tail kept
            (6.0, 0.0, [0, 3]),
            (6.0, 1.5, [0, 1.5, 3.0, 4.5]),  # the last leaves 1.5 s >= 1: kept
            (10.0, 0.0, [0, 3, 6, 9]),
        ],
    )
    def test_window_starts(self, seconds, overlap, expected):
        s = AudioSettings(overlap=overlap)
        starts = window_starts(int(seconds * SEC), s)
        assert starts.tolist() == [int(e * SEC) for e in expected]

    def test_min_segment_is_a_parameter(self):
        n = int(3.5 * SEC)
        assert window_starts(n, AudioSettings(min_segment_seconds=0.5)).tolist() == [0, 3 * SEC]
        assert window_starts(n, AudioSettings(min_segment_seconds=1.0)).tolist() == [0]

    def test_hop_follows_overlap(self):
        starts = window_starts(30 * SEC, AudioSettings(overlap=2.5))
        assert np.all(np.diff(starts) == int(0.5 * SEC))
        assert starts[0] == 0

    @pytest.mark.parametrize("kwargs", [
        {"overlap": 3.0}, {"overlap": -0.1}, {"fmin": 500, "fmax": 400},
        {"fmax": 30000}, {"min_segment_seconds": 0}, {"min_segment_seconds": 3.5},
        {"crop_mode": "middle"},
    ])
    def test_bad_settings_are_refused(self, kwargs):
        with pytest.raises(ValueError):
            AudioSettings(**kwargs)


class TestReading:
    @pytest.mark.parametrize("sr", [8000, 22050, 32000, 44100, 48000, 96000, 192000])
    def test_resampling_matches_one_shot_reference(self, make_audio, sr):
        p = make_audio(f"c{sr}.wav", seconds=7.3, sr=sr, subtype="FLOAT")
        s = AudioSettings()
        starts, ref = reference_windows(p, s)
        got = list(iter_windows(probe(p), s, starts))
        assert [g[0] for g in got] == starts.tolist()
        np.testing.assert_allclose(np.stack([g[1] for g in got]), ref, atol=1e-6)

    def test_stereo_is_downmixed_by_mean(self, make_audio):
        x = chirp(4.0, SR)[:, 0]
        p = make_audio("st.wav", data=np.stack([x, -x], axis=1), subtype="FLOAT")
        assert np.abs(load(p)).max() < 1e-7
        q = make_audio("st2.wav", data=np.stack([x, 0 * x], axis=1), subtype="FLOAT")
        np.testing.assert_allclose(load(q), x / 2, atol=1e-7)

    def test_blocks_of_a_long_file_equal_the_one_shot_reference(self, make_audio):
        """A 130-s file spans five decoding blocks; windows straddle the block edges."""
        p = make_audio("long.flac", seconds=130.0, sr=44100, channels=2)
        s = AudioSettings(overlap=1.0)
        starts, ref = reference_windows(p, s)
        got = np.stack([w for _, w in iter_windows(probe(p), s, starts)])
        np.testing.assert_allclose(got, ref, atol=2e-6)

    @pytest.mark.parametrize("overlap", [0.0, 1.7])
    @pytest.mark.parametrize("bandpass", [{}, {"fmin": 500.0, "fmax": 9000.0}])
    @pytest.mark.parametrize("name", ["mid.wav", "mid.mp3"])
    def test_reading_from_the_middle_is_bit_identical(self, make_audio, overlap, bandpass, name):
        """Long files are cut into work units; each unit must give the one-pass samples
        exactly (BirdNET amplifies even 1e-7 differences in zero-padded windows)."""
        p = make_audio(name, seconds=130.5, sr=44100)
        s = AudioSettings(overlap=overlap, **bandpass)
        info = probe(p)
        starts = window_starts(info.target_samples(), s)
        full = dict(iter_windows(info, s, starts))
        for lo, hi in [(5, 9), (19, 23), (len(starts) - 3, len(starts))]:
            for start, w in iter_windows(info, s, starts[lo:hi]):
                np.testing.assert_array_equal(w, full[start])

    def test_bandpass_matches_scipy_and_removes_out_of_band(self, make_audio):
        from scipy.signal import butter, sosfilt

        t = np.arange(5 * SR) / SR
        x = (0.3 * np.sin(2 * np.pi * 200 * t) + 0.3 * np.sin(2 * np.pi * 4000 * t))
        p = make_audio("bp.wav", data=x.astype(np.float32), subtype="FLOAT")
        s = AudioSettings(fmin=1000.0, fmax=8000.0)
        y = load(p, s)
        sos = butter(5, [1000 / 24000, 8000 / 24000], btype="band", output="sos")
        np.testing.assert_allclose(y, sosfilt(sos, x.astype(np.float32)), atol=1e-6)
        spec = np.abs(np.fft.rfft(y[SR:]))
        freqs = np.fft.rfftfreq(len(y) - SR, 1 / SR)
        assert spec[np.argmin(np.abs(freqs - 200))] < 0.01 * spec[np.argmin(np.abs(freqs - 4000))]

    def test_default_band_applies_no_filter(self, make_audio):
        p = make_audio("nf.wav", seconds=2.0, subtype="FLOAT")
        x, _ = sf.read(p, dtype="float32")
        np.testing.assert_array_equal(load(p), x)

    def test_mp3_and_ogg_decode(self, make_audio):
        for name in ("a.mp3", "a.ogg"):
            p = make_audio(name, seconds=4.0, sr=44100)
            info = probe(p)
            assert info.sample_rate == 44100
            assert len(load(p)) == info.target_samples()


class TestBadInput:
    def test_missing_file(self, tmp_path):
        with pytest.raises(AudioError, match="not found"):
            probe(tmp_path / "nope.wav")

    def test_empty_file(self, tmp_path):
        p = tmp_path / "empty.wav"
        p.write_bytes(b"")
        with pytest.raises(AudioError, match="empty file"):
            probe(p)

    def test_not_audio(self, tmp_path):
        p = tmp_path / "notes.wav"
        p.write_text("this is not audio\n" * 100)
        with pytest.raises(AudioError, match="not an audio file, or damaged"):
            probe(p)

    def test_truncated_wav(self, make_audio):
        p = make_audio("trunc.wav", seconds=5.0)
        data = p.read_bytes()
        p.write_bytes(data[:30])  # a header cut in half
        with pytest.raises(AudioError):
            probe(p)

    def test_zero_length_wav(self, make_audio):
        p = make_audio("zero.wav", data=np.zeros((0, 1), dtype=np.float32))
        with pytest.raises(AudioError, match="no audio samples"):
            probe(p)

    def test_too_short(self, make_audio):
        p = make_audio("short.wav", seconds=0.6)
        with pytest.raises(AudioError, match="too short: 0.60 s"):
            planned_starts(probe(p), AudioSettings())

    def test_ffmpeg_only_formats_are_named(self, tmp_path):
        p = tmp_path / "phone.m4a"
        p.write_bytes(b"\x00" * 100)
        with pytest.raises(AudioError, match="no decoder for '.m4a'.*ffmpeg"):
            probe(p)

    def test_directory_and_broken_link(self, tmp_path):
        d = tmp_path / "folder.wav"
        d.mkdir()
        with pytest.raises(AudioError, match="not a regular file"):
            probe(d)
        link = tmp_path / "dangling.wav"
        os.symlink(tmp_path / "gone.wav", link)
        with pytest.raises(AudioError, match="not found"):
            probe(link)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
    def test_unreadable(self, make_audio):
        p = make_audio("locked.wav")
        p.chmod(0)
        with pytest.raises(AudioError, match="permission denied"):
            probe(p)

    def test_nan_samples_are_an_error(self, make_audio):
        x = chirp(8.0, SR)
        x[5 * SR + 10] = np.nan
        p = make_audio("nan.wav", data=x, subtype="FLOAT")
        s = AudioSettings()
        info = probe(p)
        with pytest.raises(AudioError, match="NaN or infinite values at 5.00 s"):
            list(iter_windows(info, s, planned_starts(info, s)))

    def test_low_sample_rate_is_warned_about(self, make_audio):
        p = make_audio("phone.wav", seconds=3.0, sr=8000)
        notes = notes_for(probe(p), AudioSettings())
        assert notes and "8000 Hz" in notes[0]
        q = make_audio("hi.wav", seconds=3.0, sr=192000)
        assert notes_for(probe(q), AudioSettings()) == []


class TestCropModes:
    def test_center_first_segments(self, make_audio):
        p = make_audio("ten.wav", seconds=10.0)
        info = probe(p)
        assert planned_starts(info, AudioSettings(crop_mode="first")).tolist() == [0]
        assert planned_starts(info, AudioSettings(crop_mode="center")).tolist() == [int(3.5 * SEC)]
        assert len(planned_starts(info, AudioSettings(crop_mode="segments"))) == 4

    def test_center_of_a_short_clip_is_the_padded_clip(self, make_audio):
        p = make_audio("two.wav", seconds=2.0)
        assert planned_starts(probe(p), AudioSettings(crop_mode="center")).tolist() == [0]

    def test_smart_picks_loud_windows(self):
        rng = np.random.default_rng(1)
        n, seg = 10, 3 * SEC
        windows = 0.001 * rng.standard_normal((n, seg)).astype(np.float32)
        windows[2] *= 200
        windows[7] *= 100
        starts = np.arange(n) * seg
        chosen = smart_starts(windows, starts)
        assert chosen.tolist() == [2 * seg, 7 * seg]

    def test_smart_on_flat_audio_keeps_a_third(self):
        windows = np.ones((9, 10), dtype=np.float32)
        chosen = smart_starts(windows, np.arange(9) * 10)
        assert len(chosen) == 3


def test_find_audio_files(tmp_path, make_audio):
    make_audio("root/a.wav", seconds=1.0)
    make_audio("root/sub/b.flac", seconds=1.0)
    make_audio("root/.hidden/c.wav", seconds=1.0)
    (tmp_path / "root" / "readme.txt").write_text("x")
    (tmp_path / "root" / "x.M4A").write_bytes(b"x")
    files, problems = find_audio_files([tmp_path / "root", tmp_path / "missing"])
    rels = sorted(rel for _, rel in files)
    assert rels == ["root/a.wav", "root/sub/b.flac", "root/x.M4A"]
    assert problems == [(str(tmp_path / "missing"), "file or folder not found")]
    single, _ = find_audio_files([tmp_path / "root"])
    assert sorted(rel for _, rel in single) == ["a.wav", "sub/b.flac", "x.M4A"]


def test_smart_keeps_a_single_call_alone():
    rng = np.random.default_rng(2)
    windows = 0.001 * rng.standard_normal((6, 1000)).astype(np.float32)
    windows[4] *= 100
    assert smart_starts(windows, np.arange(6) * 1000).tolist() == [4000]
