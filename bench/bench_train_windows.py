"""Issue 21 items 2 and 6: windows of long recordings, and site background.

Quality measurements on devbirds (no timings); the numbers are in docs/TRAINING.md.

1. **Long recordings.** Per species, clips 0-4 joined into one file with 4-8 s of quiet
   pink noise between them (about 60 s: a whole recording with calls and silences, made of
   real calls); clips 5-9 are the separate test set (``--test-data``). Trained with the smart
   crop for every file (``--max-windows-per-recording 0``) and with the activity rule at
   margins of 3, 6 (the default), 10 and 15 dB, ``--head logreg``: windows trained and the
   test set's macro F1, and how many of the windows kept hold at least 1 s of a clip (the
   rest are gap).
2. **Site background.** The first five species train; the other five species' clips are the
   ``--background`` folder (real recordings without the target species, with other birds:
   what a site sounds like). False positives per hour on the held-out site recordings with
   the default ``--background-windows`` against 1 window (the same split, the same seed), and
   the cross-validated macro F1 of those runs and of a run without ``--background``; seeds
   0, 1, 2.

    EDGEBIRD_DEVBIRDS=/work/shared/data/devbirds python bench/bench_train_windows.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np


def long_set(data: Path, out: Path) -> dict[str, list[tuple[float, float]]]:
    """Write ``out/long/<species>/long.wav`` and ``out/test/<species>/`` (symlinks); return
    each long file's clip intervals (seconds)."""
    import soundfile as sf

    from edgebird.audio import AudioSettings, load
    from edgebird.synth import SR, noise

    rng = np.random.default_rng(0)
    intervals = {}
    for sp in sorted(d for d in data.iterdir() if d.is_dir()):
        clips = sorted(sp.glob("*.mp3"))
        parts, t, iv = [], 0.0, []
        for c in clips[:5]:
            x = load(c, AudioSettings())
            gap = (0.003 * noise(int(rng.uniform(4, 8) * SR), rng)).astype(np.float32)
            iv.append((t, t + len(x) / SR))
            t += (len(x) + len(gap)) / SR
            parts += [x, gap]
        (out / "long" / sp.name).mkdir(parents=True, exist_ok=True)
        sf.write(out / "long" / sp.name / "long.wav", np.concatenate(parts), SR,
                 subtype="PCM_16")
        (out / "test" / sp.name).mkdir(parents=True, exist_ok=True)
        for c in clips[5:]:
            if not (out / "test" / sp.name / c.name).exists():
                os.symlink(c, out / "test" / sp.name / c.name)
        intervals[str(out / "long" / sp.name / "long.wav")] = iv
    return intervals


def train(data, out, store, **kw):
    from edgebird.training.classifier import train_from_data
    from edgebird.training.train import TrainSettings

    test = kw.pop("test_data", None)
    return train_from_data(data, out, TrainSettings(head="logreg", **kw), store=store,
                           test_data=test, progress=False, echo=lambda m: None)


def main() -> None:
    from edgebird.audio import AudioSettings
    from edgebird.training.windows import choose_active, recording_activity

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default=os.path.join(tempfile.gettempdir(), "edgebird-bench-store"))
    args = ap.parse_args()
    data = Path(os.environ.get("EDGEBIRD_DEVBIRDS", "/work/shared/data/devbirds"))
    work = Path(tempfile.mkdtemp(prefix="bench-train-windows-"))

    print("## 1. long recordings (one per species, clips 0-4 of devbirds); test: clips 5-9")
    intervals = long_set(data, work)
    from edgebird.training import windows

    acts = {p: recording_activity(p, AudioSettings()) for p in intervals}
    default = windows.ACTIVE_DB
    for cap, margin in ((0, default), (20, 3.0), (20, default), (20, 10.0), (20, 15.0)):
        windows.ACTIVE_DB = margin  # read when the windows are chosen
        run = train(work / "long", work / f"cap{cap}-{margin:g}", args.store, holdout_species=0,
                    max_windows_per_recording=cap, test_data=work / "test")
        t = run.result.test_metrics[0]
        n = sum(c["windows"] for c in run.result.windows.values())
        kept = kept_clip = clip_windows = 0
        for path, iv in intervals.items():
            starts, act = acts[path]
            chosen = choose_active(act, 20)
            holds = np.array([sum(max(0.0, min(s + 3, b) - max(s, a)) for a, b in iv) >= 1.0
                              for s in starts])
            kept, kept_clip = kept + len(chosen), kept_clip + int(holds[chosen].sum())
            clip_windows += int(holds.sum())
        rule = "smart crop for all" if cap == 0 else (f"activity rule, {margin:g} dB: kept "
                                                      f"{kept}, {kept_clip} of them hold >= 1 s"
                                                      f" of a clip (of {clip_windows} that do)")
        print(f"{rule}; {n} windows trained; test macro F1 at the thresholds "
              f"{t['f1@thr']:.3f} (0.5: {t['f1@0.5']:.3f}), AUPRC {t['auprc']:.3f}")
    windows.ACTIVE_DB = default

    print("## 2. five species; the other five as --background")
    five, other = work / "five", work / "other5"
    five.mkdir()
    other.mkdir()
    for i, sp in enumerate(sorted(d for d in data.iterdir() if d.is_dir())):
        os.symlink(sp, (five if i < 5 else other) / sp.name)
    for seed in (0, 1, 2):
        cells = []
        for bw in (500, 1):
            r = train(five, work / f"site{seed}-{bw}", args.store, seed=seed,
                      background=str(other), background_windows=bw).result
            cells.append(f"bg windows {r.site_fp['trained_windows']}: FP/h "
                         f"{r.site_fp['any_per_hour']:.0f} on {r.site_fp['hours'] * 60:.1f} "
                         f"min, CV F1 {r.overall[0]['f1@thr']:.3f}")
        r = train(five, work / f"none{seed}", args.store, seed=seed).result
        cells.append(f"no --background: CV F1 {r.overall[0]['f1@thr']:.3f}")
        print(f"seed {seed}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
