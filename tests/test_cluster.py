"""``--dask``: the same per-file functions on a real Dask cluster (nothing mocked).

A LocalCluster must give byte-identical tables to the local engine; a scheduler and two
workers started as separate processes must finish a batch when one worker is killed mid-run,
with every file's results there exactly once; bad files behave as in the local engine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
from edgebird.pipeline.embed import embed_files
from edgebird.pipeline.engine import EngineSettings
from edgebird.pipeline.store import EmbeddingStore

pytest.importorskip("distributed")
from edgebird.cluster.dask import DaskTarget  # noqa: E402 - needs distributed

pytestmark = pytest.mark.integration
QUIET = dict(progress=False, echo=lambda m: None)
DASK = Path(sys.executable).with_name("dask")


def tree(folder: Path, skip: tuple[str, ...] = ("BirdNET_analysis_params.csv",
                                              "analysis_summary.txt", "error_log.txt",
                                              "analysis_record.jsonl")
         ) -> dict[str, bytes]:
    """Every file under ``folder`` but those that differ by design (timing; log order)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in skip}


def bad_files(folder: Path) -> list[str]:
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    (folder / "empty.flac").write_bytes(b"")
    return ["corrupt.wav", "empty.flac"]


def test_dask_target_parsing():
    assert DaskTarget.parse("local:3") == DaskTarget(None, 3)
    assert DaskTarget.parse("local").address is None
    assert DaskTarget.parse("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    assert DaskTarget.parse("scheduler:8786").address == "scheduler:8786"
    for bad in ("local:0", "nowhere", "local:x"):
        with pytest.raises(ValueError, match="scheduler|N >= 1"):
            DaskTarget.parse(bad)


def test_local_cluster_equals_the_local_engine(tmp_path, make_audio, devbirds_or_none):
    for i in range(5):
        make_audio(f"in/s{i % 2}/f{i}.wav", seconds=10.0 + 4 * i, sr=44100 if i % 2 else 48000,
                   channels=1 + i % 2)
    bad = bad_files(tmp_path / "in")
    inputs = [tmp_path / "in"]
    if devbirds_or_none is not None:  # a slice of real recordings too, when present
        inputs.append(devbirds_or_none / "Junco_hyemalis")
    settings = AnalyzeSettings(rtypes=("table", "csv"), combine=True, min_conf=0.05)
    local = analyze_files(inputs, tmp_path / "local", settings,
                          engine=EngineSettings(workers=2), **QUIET)
    remote = analyze_files(inputs, tmp_path / "dask", settings, dask="local:2", **QUIET)
    assert remote.analyzed == local.analyzed >= 5
    assert remote.windows == local.windows
    assert sorted(os.path.basename(p) for p, _ in remote.failed) == bad
    assert tree(tmp_path / "dask") == tree(tmp_path / "local")
    record = "analysis_record.jsonl"  # one line per file, in the order they finished
    assert sorted((tmp_path / "dask" / record).read_text().splitlines()) == sorted(
        (tmp_path / "local" / record).read_text().splitlines())
    log = (tmp_path / "dask" / "error_log.txt").read_text()
    assert all(name in log for name in bad)
    # a second run skips everything without starting a cluster
    again = analyze_files(inputs, tmp_path / "dask", settings, dask="local:2", **QUIET)
    assert again.skipped == local.analyzed and again.analyzed == 0


def test_embed_on_a_local_cluster_equals_the_local_engine(tmp_path, make_audio):
    for i in range(3):
        make_audio(f"in/f{i}.wav", seconds=7.0 + 5 * i, sr=44100 if i else 48000)
    bad = bad_files(tmp_path / "in")
    local = embed_files([tmp_path / "in"], tmp_path / "local", **QUIET)
    remote = embed_files([tmp_path / "in"], tmp_path / "dask", dask="local:2", **QUIET)
    assert remote.computed == local.computed == 3
    assert sorted(os.path.basename(p) for p, _ in remote.failed) == bad
    with EmbeddingStore(tmp_path / "local") as a, EmbeddingStore(tmp_path / "dask") as b:
        ea = {e.meta["key"]: e.load() for e in a}
        eb = {e.meta["key"]: e.load() for e in b}
    assert ea.keys() == eb.keys()
    for k, (starts, embs) in ea.items():
        np.testing.assert_array_equal(eb[k][0], starts)
        np.testing.assert_array_equal(eb[k][1], embs)
    again = embed_files([tmp_path / "in"], tmp_path / "dask", dask="local:1", **QUIET)
    assert again.cached == 3 and again.computed == 0


def _env() -> dict[str, str]:
    """Workers and client import the edgebird under test (not some other install)."""
    import edgebird

    root = str(Path(edgebird.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])])}


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, env=_env())


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


@pytest.mark.skipif(not DASK.is_file(), reason="the `dask` command is not installed")
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path, make_audio):
    for i in range(14):
        make_audio(f"in/d{i // 7}/f{i:02d}.wav", seconds=36.0, sr=44100 if i % 2 else 48000)
    bad = bad_files(tmp_path / "in")
    sched_file = tmp_path / "scheduler.json"
    procs = [_start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)],
                    tmp_path / "scheduler.log")]
    try:
        deadline = time.time() + 60
        while not sched_file.is_file() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for name in ("a", "b"):
            procs.append(_start([str(DASK), "worker", address, "--nthreads", "1",
                                 "--nworkers", "1", "--no-dashboard", "--name", name,
                                 "--host", "127.0.0.1"], tmp_path / f"worker-{name}.log"))
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "edgebird", "analyze", str(tmp_path / "in"), "-o",
               str(out), "--rtype", "raven,csv", "--combine", "--min-conf", "0.05", "-q",
               "--dask", address]
        run = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=_env())
        deadline = time.time() + 180
        while time.time() < deadline and len(list(out.rglob("*.results.csv"))) < 2:
            time.sleep(0.05)
        _kill(procs[1])  # worker a, nanny and all, mid-run
        killed_at = len(list(out.rglob("*.results.csv")))
        stdout, _ = run.communicate(timeout=300)
        assert killed_at < 14, "the batch finished before the kill: make the files longer"
        assert run.returncode == 1, stdout  # 1: some files (the bad ones) failed
        assert "14 analyzed" in stdout and "2 failed" in stdout, stdout
        for name in bad:
            assert name in (out / "error_log.txt").read_text()
    finally:
        for p in reversed(procs):
            _kill(p)
    ref = tmp_path / "ref"
    local = subprocess.run(cmd[:6] + [str(ref)] + cmd[7:-2] + ["--workers", "2"],
                           capture_output=True, text=True, env=_env())
    assert local.returncode == 1 and "2 failed" in local.stdout, local.stdout  # the bad files
    assert tree(out) == tree(ref)  # every table once, each byte for byte
    rows = (out / "BirdNET_CombinedTable.csv").read_text().splitlines()[1:]
    assert len(rows) == len(set(rows))
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_a_long_file_is_cut_into_chunks_across_workers(tmp_path, make_audio):
    """Issue 22.5: on a cluster a long file's time chunks run as separate tasks (the local
    engine's units, on its block grid), merged on the client: the tables equal the local
    run's byte for byte, merged detections across chunk edges included."""
    from edgebird.audio import AudioSettings
    from edgebird.backbones import get_backbone
    from edgebird.pipeline.analyze import _Batch, make_plan

    long = make_audio("in/long.wav", seconds=150.0, sr=44100)
    make_audio("in/short.wav", seconds=8.0)
    engine = EngineSettings(chunk_windows=8)  # 50 windows, 5 blocks -> chunks of one block
    settings = AnalyzeSettings(rtypes=("table", "csv", "audacity"), min_conf=0.01,
                               merge_consecutive=3)
    plan = make_plan(settings, AudioSettings(), get_backbone("birdnet"))
    batch = _Batch(tmp_path / "x", plan, engine, get_backbone("birdnet"))
    info, units, n_windows = batch.cluster_parts(long, 2)
    assert len(units) >= 4 and n_windows == 50
    assert batch.cluster_parts(tmp_path / "in" / "short.wav", 2) is None  # one chunk
    local = analyze_files([tmp_path / "in"], tmp_path / "local", settings,
                          engine=EngineSettings(workers=1), **QUIET)
    remote = analyze_files([tmp_path / "in"], tmp_path / "dask", settings, engine=engine,
                           dask="local:2", **QUIET)
    assert remote.analyzed == local.analyzed == 2 and remote.windows == local.windows
    assert tree(tmp_path / "dask") == tree(tmp_path / "local")
