"""``analyze`` with the real BirdNET model: real recordings (../shared/data/devbirds, skipped
when absent), custom classifiers (head-only and standalone), and a batch killed with -9."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from edgebird.core.writers.readers import read_results
from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
from edgebird.pipeline.engine import EngineSettings

pytestmark = pytest.mark.integration
QUIET = dict(progress=False, echo=lambda m: None)


def top_label_per_file(out: Path) -> dict[str, str]:
    """The label of each recording's most confident row (per-file Raven tables)."""
    best: dict[str, tuple[float, str]] = {}
    for table in out.rglob("*.BirdNET.selection.table.txt"):
        for d in read_results(table)[1]:
            if d.file not in best or d.confidence > best[d.file][0]:
                best[d.file] = (d.confidence, d.label)
    return {f: lab for f, (_, lab) in best.items()}


def expected_species(devbirds: Path) -> dict[str, str]:
    """Scientific names: labels.csv's common names are not always BirdNET's (its "Myrtle
    Warbler" is BirdNET's "Yellow-rumped Warbler")."""
    with open(devbirds / "labels.csv", newline="") as f:
        return {str(devbirds / r["path"]): r["scientific_name"] for r in csv.DictReader(f)}


def test_birdnet_top_detection_is_the_labelled_species(devbirds, tmp_path):
    summary = analyze_files([devbirds], tmp_path / "out", AnalyzeSettings(top_n=1), **QUIET)
    truth = expected_species(devbirds)
    top = top_label_per_file(tmp_path / "out")
    assert summary.analyzed == len(truth) and not summary.failed
    hits = sum(top.get(f, "").split("_")[0] == sci for f, sci in truth.items())
    assert hits / len(truth) >= 0.9, f"{hits}/{len(truth)}"


@pytest.fixture(scope="module")
def trained(devbirds, tmp_path_factory):
    """A classifier trained on 7 clips of each of 4 species; the other 3 clips are held out."""
    pytest.importorskip("tensorflow")
    from edgebird.training.classifier import train_from_data
    from edgebird.training.train import TrainSettings

    root = tmp_path_factory.mktemp("subset")
    species = sorted(p.name for p in devbirds.iterdir() if p.is_dir())[:4]
    held: dict[str, list[Path]] = defaultdict(list)
    for sp in species:
        clips = sorted((devbirds / sp).glob("*.mp3"))
        (root / "train" / sp).mkdir(parents=True)
        for c in clips[:7]:
            os.symlink(c, root / "train" / sp / c.name)
        (root / "held").mkdir(exist_ok=True)
        for c in clips[7:]:
            os.symlink(c, root / "held" / c.name)
            held[sp].append(root / "held" / c.name)
    run = train_from_data(root / "train", root / "model", TrainSettings(folds=2,
                          holdout_species=0), engine=EngineSettings(), save_mode="replace",
                          store=root / "store", progress=False, echo=lambda m: None)
    return run, root, held


def test_custom_classifier_finds_its_species_in_held_out_clips(trained, tmp_path):
    run, root, held = trained
    tops = {}
    for kind in ("head", "replace"):
        out = tmp_path / kind
        summary = analyze_files([root / "held"], out, AnalyzeSettings(
            classifier=str(run.files[kind]), top_n=1, rtypes=("table", "csv")), **QUIET)
        assert summary.analyzed == 12 and not summary.failed
        tops[kind] = top_label_per_file(out)
        truth = {str(p): sp for sp, paths in held.items() for p in paths}
        # folders are named by the scientific name (Melozone_crissalis/), which training maps
        # to BirdNET's full label (Melozone crissalis_California Towhee)
        hits = sum(tops[kind].get(f, "").split("_")[0].replace(" ", "_") == sp
                   for f, sp in truth.items())
        assert hits >= 10, (kind, hits, tops[kind])
    # the head on BirdNET's embedding and the standalone model give the same answers
    assert tops["head"] == tops["replace"]
    h = read_results(next((tmp_path / "head").glob("*.csv")))[1]
    s = read_results(next((tmp_path / "replace").glob("*.csv")))[1]
    assert [(d.start, d.label) for d in h] == [(d.start, d.label) for d in s]
    assert max(abs(a.confidence - b.confidence) for a, b in zip(h, s, strict=True)) <= 2e-4


def test_classifier_thresholds_and_missing_labels(trained, tmp_path):
    run, root, _ = trained
    model = Path(run.files["head"])
    thr = model.with_name(model.stem + "_Thresholds.csv")
    assert thr.is_file()
    broken = tmp_path / "Broken.tflite"
    broken.write_bytes(model.read_bytes())
    with pytest.raises(ValueError, match="labels file"):
        analyze_files([root / "held"], tmp_path / "x", AnalyzeSettings(
            classifier=str(broken)), **QUIET)
    (tmp_path / "Broken_Labels.txt").write_text("only_one\n")
    with pytest.raises(ValueError, match="do not belong together"):
        analyze_files([root / "held"], tmp_path / "x", AnalyzeSettings(
            classifier=str(broken)), **QUIET)


def test_kill_9_then_rerun_loses_and_duplicates_nothing(tmp_path, make_audio):
    for i in range(16):
        make_audio(f"in/d{i // 8}/f{i:02d}.wav", seconds=45.0, sr=44100 if i % 2 else 48000)
    inp, out, ref = tmp_path / "in", tmp_path / "out", tmp_path / "ref"
    cmd = [sys.executable, "-m", "edgebird", "analyze", str(inp), "--rtype", "raven,csv",
           "--combine", "--min-conf", "0.05", "-q", "--workers", "2"]
    proc = subprocess.Popen(cmd + ["-o", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.BirdNET.results.csv"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(list(out.rglob("*.BirdNET.results.csv")))
    assert 3 <= partial < 16, partial
    assert not (out / "BirdNET_CombinedTable.csv").exists()
    rerun = subprocess.run(cmd + ["-o", str(out)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{partial} skipped" in rerun.stdout
    subprocess.run(cmd + ["-o", str(ref)], check=True, capture_output=True)
    names = sorted(str(p.relative_to(ref)) for p in ref.rglob("*BirdNET*")
                   if p.name != "BirdNET_analysis_params.csv")
    assert names == sorted(str(p.relative_to(out)) for p in out.rglob("*BirdNET*")
                           if p.name != "BirdNET_analysis_params.csv")
    for n in names:
        assert (out / n).read_bytes() == (ref / n).read_bytes(), n
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
