"""Benchmark the field recorder (``edgebird.export``): time per window, memory, Pi projection.

What is measured, and why:

(a) Milliseconds per 3-s window at batch 1, the way the recorder runs its model: BirdNET V2.4
    alone (the FP32 model, logits only) and the standalone classifier the recorder loads
    (BirdNET with a 10-class dense head appended after the embedding), each through
    ``make_interpreter`` with 1 thread (the recorder's default) and with 2. Three warm-up
    invokes, then ``--windows`` windows of random audio; the two models alternate window by
    window, so drift in the machine's speed affects both alike. Median and p95 of the
    per-window times (set_tensor + invoke + get_tensor).
(b) The recorder's whole per-window model path, ``Model.detect`` (inference, sigmoid,
    thresholds, ``select``), against the bare invoke on the same interpreter: the scoring
    overhead.
(c) The runtime as the Pi runs it: ``python -m edgebird.export.recorder --config CFG``
    replaying a generated 10-minute 48 kHz WAV (source = file, realtime = no, clips = yes),
    ``--runs`` times. Peak RSS (the kernel's high-water mark VmHWM, and psutil's RSS, both
    sampled every 50 ms) against the 300 MB target, and throughput in x realtime (whole
    process, and the recorder's own loop from its health file).
(d) A projection to Raspberry Pi 4 and 5: published BirdNET per-chunk timings scaled by the
    ratio (with head) / (BirdNET alone) measured in (a), turned into real-time factors for
    overlaps 0, 1.5 and 2.5 s. Not measured on a Pi.

Results go between the ``bench_recorder`` markers of docs/BENCHMARKS.md.
Run: ``python bench/bench_recorder.py`` (about a minute on 2 cores) or ``--quick``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness as h
import numpy as np
import psutil
import soundfile as sf

NAME = "bench_recorder"
RATE, WINDOW = 48000, 144_000
N_CLASSES = 10
MIN_CONF = 0.75  # with the random head below: detections in about 2 of 3 windows
REPLAY_MINUTES = 10
TARGET_RSS_MB = 300.0
#: Published BirdNET V2.4 time per 3-s chunk (BirdNET-Go documentation), ms.
PUBLISHED_MS = {"Raspberry Pi 4": 170.0, "Raspberry Pi 5": 90.0}
OVERLAPS = (0.0, 1.5, 2.5)


# -- inputs ------------------------------------------------------------------------------------
def standalone_model(folder: Path) -> Path:
    """BirdNET + a random 1024 -> 10 dense head, written as the recorder's model file."""
    from edgebird.backbones.birdnet import graph as tflite_graph
    from edgebird.backbones.birdnet.model import EMBEDDING_TENSOR, birdnet_files
    from edgebird.training.model_export import write_model

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.08, (1024, N_CLASSES)).astype(np.float32)
    b = np.full(N_CLASSES, -1.0, dtype=np.float32)
    content = tflite_graph.append_dense_head(birdnet_files().model.read_bytes(),
                                             EMBEDDING_TENSOR, [(w, b, False)], "replace")
    labels = [f"Genus species{i}_Bird {i}" for i in range(N_CLASSES)]
    return write_model(folder / "Field.tflite", content, labels, None)


def replay_file(folder: Path) -> Path:
    """10 minutes at 48 kHz: noise, with a 1-s chirp at a random time in about every third
    3-s stretch (so some windows have detections and clips are written)."""
    path = folder / f"replay_{REPLAY_MINUTES}min_48k.wav"
    if not path.is_file():
        rng = np.random.default_rng(7)
        x = 0.02 * rng.standard_normal(REPLAY_MINUTES * 60 * RATE)
        t = np.arange(RATE) / RATE
        for k in range(0, len(x) // WINDOW, 3):
            f0 = rng.uniform(1500, 5000)
            at = k * WINDOW + int(rng.integers(0, 2 * RATE))
            x[at:at + RATE] += 0.2 * np.sin(2 * np.pi * (f0 + 1500 * t) * t)
        sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")
    return path


def write_config(folder: Path, model: Path, audio: Path) -> Path:
    """The deployed template, switched to replaying ``audio`` (as tests/test_recorder.py)."""
    from edgebird.export.config import TEMPLATE

    text = TEMPLATE.format(model=model, labels=f"{model.with_suffix('')}_Labels.txt",
                           thresholds="", species_list="", station="bench")
    for old, new in (("source = soundcard", "source = file"), ("input =\n", f"input = {audio}\n"),
                     ("min_conf =\n", f"min_conf = {MIN_CONF}\n"),
                     ("data_dir = data", f"data_dir = {folder / 'data'}")):
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "config.ini"
    path.write_text(text)
    return path


# -- (a) and (b): per-window timings ----------------------------------------------------------
def interpreter(model: Path, threads: int):
    from edgebird.core.runtime import make_interpreter

    it = make_interpreter(model_path=str(model), num_threads=threads)
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    it.resize_tensor_input(inp, [1, WINDOW])
    it.allocate_tensors()
    return lambda x: (it.set_tensor(inp, x), it.invoke(), it.get_tensor(out))[-1]


def per_window(models: dict[str, Path], threads: int, x: np.ndarray) -> dict[str, list]:
    """ms per window for each model, alternating models window by window."""
    runs = {name: interpreter(path, threads) for name, path in models.items()}
    for run in runs.values():
        for i in range(3):
            run(x[i:i + 1])
    times: dict[str, list] = {name: [] for name in runs}
    for i in range(len(x)):
        order = list(runs) if i % 2 == 0 else list(runs)[::-1]
        for name in order:
            t0 = time.perf_counter()
            runs[name](x[i:i + 1])
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def detect_path(config: Path, x: np.ndarray) -> dict[str, list]:
    """``Model.detect`` vs the bare invoke on its own interpreter, alternating, in ms."""
    from edgebird.export.config import load_config
    from edgebird.export.recorder import Model

    from edgebird.core.scores import flat_sigmoid, select

    m = Model(load_config(config))

    def bare(w):
        m.interp.set_tensor(m.input, w.reshape(1, WINDOW))
        m.interp.invoke()
        return m.interp.get_tensor(m.output)

    for i in range(3):
        m.detect(x[i], 0.0, 3.0, "bench")
    out: dict[str, list] = {"invoke": [], "detect": [], "scoring": []}
    for i in range(len(x)):
        t0 = time.perf_counter()
        logits = bare(x[i])
        t1 = time.perf_counter()
        m.detect(x[i], 0.0, 3.0, "bench")
        t2 = time.perf_counter()
        select(flat_sigmoid(logits, m.sensitivity), np.array([0.0]), np.array([3.0]), m.labels,
               m.thresholds, None, m.allowed, "bench")
        t3 = time.perf_counter()
        out["invoke"].append((t1 - t0) * 1e3)
        out["detect"].append((t2 - t1) * 1e3)
        out["scoring"].append((t3 - t2) * 1e3)
    return out


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


# -- (c): the recorder process ----------------------------------------------------------------
def replay(config: Path, data: Path) -> dict:
    """One replay in a subprocess from a fresh data folder: peak RSS, wall, health.

    The peak is VmHWM read from /proc while the process runs (``wait4``'s ru_maxrss would
    not do: with vfork it includes this benchmark's own memory at the time of the spawn)."""
    shutil.rmtree(data, ignore_errors=True)
    cmd = [sys.executable, "-m", "edgebird.export.recorder", "--config", str(config)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int, int]] = []  # (s since start, RSS, VmHWM)

    def sample() -> None:
        p = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                samples.append((time.perf_counter() - t0, p.memory_info().rss,
                                h.vm_hwm(proc.pid)))
            except (psutil.Error, OSError, ValueError):
                return
            time.sleep(h.SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.communicate()[1].decode(errors="replace")
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"the recorder failed ({proc.returncode}): {err[-2000:]}")
    health = json.loads((data / "health.json").read_text())
    hwm = max(h for _, _, h in samples)
    rss = max(r for _, r, _ in samples)
    return {"wall": wall, "hwm_mb": hwm / h.MB, "hwm_at": next(t for t, _, h in samples
                                                                 if h == hwm),
            "rss_mb": rss / h.MB,
            "late_mb": statistics.median(r for t, r, _ in samples if t >= wall / 2) / h.MB,
            "loop_s": health["uptime_s"], "windows": health["windows"],
            "detections": health["detections"],
            "clips": len(list((data / "clips").rglob("*.flac")))}


# -- report -----------------------------------------------------------------------------------
def render(info: dict, timing: dict, det: dict, replays: list[dict], n: int,
           quick: bool = False) -> str:
    alone, head = "BirdNET alone", "standalone + 10-class head"
    med = {(k, t): statistics.median(v) for t, d in timing.items() for k, v in d.items()}
    ratio = med[(head, 1)] / med[(alone, 1)]
    audio_s = REPLAY_MINUTES * 60
    lines = [
        "## The field recorder (`edgebird.export`): time per window, memory, Raspberry Pi",
        "",
        h.generated_by(info, "bench_recorder.py", quick),
        "",
        "### Per 3-s window, batch 1 (XNNPACK)",
        "",
        f"{n} windows of random audio after 3 warm-up invokes; the two models alternate window "
        "by window. Time = set_tensor + invoke + get_tensor.",
        "",
        "| model | threads | median ms | p95 ms |",
        "|---|--:|--:|--:|",
    ]
    for t in sorted(timing):
        for k in (alone, head):
            lines.append(f"| {k} | {t} | {med[(k, t)]:.1f} | {p95(timing[t][k]):.1f} |")
    inv, dt_, sc = (statistics.median(det[k]) for k in ("invoke", "detect", "scoring"))
    lines += [
        "",
        f"Ratio with head / alone at 1 thread: **{ratio:.3f}**. The head adds one 1024 x "
        f"{N_CLASSES} FC layer and BirdNET's own 1024 x 6522 output layer is pruned from the "
        "file (`tflite_graph.append_dense_head`, replace mode), so the custom model does a "
        "little less work than BirdNET alone.",
        "",
        f"The recorder's per-window path, `Model.detect` (1 thread, same {n} windows): "
        f"{dt_:.1f} ms median (p95 {p95(det['detect']):.1f}) vs {inv:.1f} ms for the bare "
        f"invoke on the same interpreter; scoring alone (`flat_sigmoid` + `select`) "
        f"{sc * 1e3:.0f} µs median, {100 * sc / inv:.2f}% of the inference.",
    ]
    hwm = max(r["hwm_mb"] for r in replays)
    wall = statistics.median(r["wall"] for r in replays)
    loop = statistics.median(r["loop_s"] for r in replays)
    r0 = replays[0]
    late = statistics.median(r["late_mb"] for r in replays)
    at = max(r["hwm_at"] for r in replays)
    peak_when = ("The peak is reached at start-up, while the model is loaded (and the model file "
                 "is read whole to hash it)" if at < 1.0 else f"The peak is reached at {at:.1f} s")
    lines += [
        "",
        "### The recorder process replaying a file",
        "",
        f"`python -m edgebird.export.recorder --config CFG` on a generated {REPLAY_MINUTES}-"
        f"minute 48 kHz WAV (source = file, realtime = no, threads = 1, clips = yes, "
        f"min_conf = {MIN_CONF}: {r0['windows']} windows, {r0['detections']} detections, "
        f"{r0['clips']} FLAC clips), fresh data folder, {len(replays)} run(s). Sampled every "
        "50 ms: peak RSS is the kernel's high-water mark (VmHWM in /proc/PID/status, so a "
        "peak between samples counts too) and when it was reached; psutil's RSS gives the "
        "largest sample and the median over the second half of the run. MB = 10^6 bytes.",
        "",
        "| run | wall s | x realtime (process) | loop s | x realtime (loop) | peak RSS MB "
        "(reached at s) | largest RSS sample MB | 2nd-half median RSS MB |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for i, r in enumerate(replays, 1):
        lines.append(f"| {i} | {r['wall']:.1f} | {audio_s / r['wall']:.0f} | {r['loop_s']:.1f} "
                     f"| {audio_s / r['loop_s']:.0f} | {r['hwm_mb']:.0f} ({r['hwm_at']:.1f}) | "
                     f"{r['rss_mb']:.0f} | {r['late_mb']:.0f} |")
    lines += [
        "",
        "*Process*: from starting Python to its exit (imports, model load, hashing, replay, "
        "tables); *loop*: the recorder's own uptime from its health file (after the model is "
        f"loaded). Median: {audio_s / wall:.0f}x realtime (process), {audio_s / loop:.0f}x "
        f"(loop). {peak_when}; after that the process stays at {late:.0f} MB.",
        "",
        "### Projection to Raspberry Pi 4 and 5 (not measured on a Pi)",
        "",
        "Published time of BirdNET V2.4 per 3-s chunk (BirdNET-Go documentation): Pi 4 "
        f"≈ {PUBLISHED_MS['Raspberry Pi 4']:.0f} ms, Pi 5 ≈ {PUBLISHED_MS['Raspberry Pi 5']:.0f}"
        f" ms. Projected recorder time per window = published x {ratio:.3f} (the ratio "
        "measured above). Real-time factor = time between windows (the hop: 3000 ms at "
        "overlap 0, 1500 ms at 1.5 s, 500 ms at 2.5 s) / projected time per window; the "
        "share of one core is its inverse.",
        "",
        "| device | projected ms/window | overlap 0 (hop 3 s) | overlap 1.5 s (hop 1.5 s) | "
        "overlap 2.5 s (hop 0.5 s) |",
        "|---|--:|--:|--:|--:|",
    ]
    for device, ms in PUBLISHED_MS.items():
        proj = ms * ratio
        cells = [f"{(3000 - 1000 * o) / proj:.1f}x ({100 * proj / (3000 - 1000 * o):.0f}% "
                 "of a core)" for o in OVERLAPS]
        lines.append(f"| {device} | {proj:.0f} | " + " | ".join(cells) + " |")
    pi4 = PUBLISHED_MS["Raspberry Pi 4"] * ratio
    lines += [
        "",
        f"Why the recorder keeps up in real time with headroom on a Pi 4: one window costs "
        f"≈ {pi4:.0f} ms of one core and brings 3000 ms of new audio at overlap 0, so "
        f"inference runs at ≈ {3000 / pi4:.0f}x real time (≈ {100 * pi4 / 3000:.0f}% of one of "
        f"the Pi's four cores); even at overlap 2.5 s it is ≈ {500 / pi4:.1f}x. The scoring "
        "after the model is negligible (measured above); the SQLite commit and any clips are "
        "written by the same thread between invokes. Capture does not wait on inference: a "
        "separate thread moves audio from the sound card into a RAM ring (60 s), and the "
        "model reads windows from it; a slow window (a clip flushed to a slow SD card, a "
        "thermal dip) only delays analysis, and the ring absorbs up to about a minute of "
        "backlog before audio would be lost (counted as overruns in `health.json`).",
        "",
        "What could differ on a real Pi: the published timings come from another program "
        "(BirdNET-Go with its own TFLite build), so ai-edge-litert's ARM64 XNNPACK kernels may "
        "be faster or slower on the same board, and the head/alone ratio was measured on this "
        "x86 machine only; a Pi 4 without a "
        "heatsink throttles under sustained load; SD-card writes (SQLite commits with "
        "`synchronous=FULL`, FLAC clips) can take tens of ms or stall longer; the timings "
        "also differ with the Pi 4 clock (1.5 vs 1.8 GHz). The margin is wide: even at "
        "500 ms per window (BirdNET-Go's figure for a Pi 3B+) overlap 0 runs at 6x real time.",
        "",
        "### Target",
        "",
        f"- Recorder peak RSS < {TARGET_RSS_MB:.0f} MB: "
        f"{h.verdict(hwm < TARGET_RSS_MB)} ({hwm:.0f} MB, highest of "
        f"{len(replays)} run(s)).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="30 windows per timing and one replay (a smoke test)",
                      runs="replays of the 10-minute file (default 3; 1 with --quick)")
    parser.add_argument("--windows", type=int, default=None,
                        help="timed windows per model and thread count (default 200; 30 with "
                             "--quick)")
    args = h.resolve(parser, parser.parse_args(argv))
    runs = args.runs
    n = args.windows or (30 if args.quick else 200)
    info, t_start = h.begin(birdnet=False)
    folder = h.OUT / "recorder"
    folder.mkdir(parents=True, exist_ok=True)
    from edgebird.backbones.birdnet.model import birdnet_files

    model = standalone_model(folder)
    config = write_config(folder, model, replay_file(folder))
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (n, WINDOW)).astype(np.float32)
    models = {"BirdNET alone": birdnet_files().model, "standalone + 10-class head": model}
    timing = {t: per_window(models, t, x) for t in (1, 2)}
    det = detect_path(config, x)
    replays = []
    for i in range(runs):
        replays.append(replay(config, folder / "data"))
        print(f"replay {i + 1}: {replays[-1]}", file=sys.stderr)
    h.publish(render(info, timing, det, replays, n, args.quick), info, t_start, NAME,
              write=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
