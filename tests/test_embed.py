"""The engine, the store and ``embed_files`` on generated audio with the real model."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import chirp

from edgebird.audio import AudioSettings, iter_windows, planned_starts, probe
from edgebird.pipeline import engine as eng
from edgebird.pipeline.embed import embed_files
from edgebird.pipeline.store import EmbeddingStore

INLINE = eng.EngineSettings(workers=1, batch_size=4)
TWO = eng.EngineSettings(workers=2, batch_size=4, chunk_windows=3)


def direct(path, model, settings=AudioSettings()) -> np.ndarray:
    """Embeddings computed the obvious way: every window through ``model.embed``."""
    info = probe(path)
    wins = np.stack([w for _, w in iter_windows(info, settings, planned_starts(info, settings))])
    return model.embed(wins)[0]


def entries_by_name(store_dir) -> dict:
    with EmbeddingStore(store_dir) as store:
        return {e.meta["relative"]: e for e in store}


@pytest.fixture
def corpus(make_audio):
    """Five good files: mixed rates, stereo, a long one, one with a partial tail."""
    return [
        make_audio("in/a.wav", seconds=6.0, sr=48000),
        make_audio("in/b.wav", seconds=7.5, sr=44100, channels=2),
        make_audio("in/sub/c.flac", seconds=4.2, sr=32000),
        make_audio("in/d.wav", seconds=75.0, sr=44100),
        make_audio("in/e.ogg", seconds=3.0, sr=48000),
    ]


def test_inline_and_two_workers_equal_the_direct_path(tmp_path, corpus, birdnet):
    s1 = embed_files([tmp_path / "in"], tmp_path / "s1", engine=INLINE, model=birdnet,
                     progress=False)
    s2 = embed_files([tmp_path / "in"], tmp_path / "s2", engine=TWO, model=birdnet,
                     progress=False)
    assert (s1.computed, s2.computed, s1.failed, s2.failed) == (5, 5, [], [])
    e1, e2 = entries_by_name(tmp_path / "s1"), entries_by_name(tmp_path / "s2")
    assert sorted(e1) == ["a.wav", "b.wav", "d.wav", "e.ogg", "sub/c.flac"]
    assert len(e2["d.wav"].parts()) == 3  # units follow the 30-s decoding blocks
    for name, entry in e1.items():
        starts, embs = entry.load()
        starts2, embs2 = e2[name].load()
        np.testing.assert_array_equal(starts, starts2)
        np.testing.assert_allclose(embs, embs2, atol=1e-5)
        np.testing.assert_allclose(embs, direct(entry.source, birdnet), atol=1e-5)
    assert e1["b.wav"].load()[0].tolist() == [0.0, 3.0, 6.0]
    assert e1["b.wav"].meta["channels"] == 2 and e1["b.wav"].meta["sample_rate"] == 44100


def test_second_run_is_a_cache_hit_and_settings_never_mix(tmp_path, corpus, birdnet):
    first = embed_files([tmp_path / "in"], tmp_path / "st", engine=INLINE, model=birdnet,
                        progress=False)
    again = embed_files([tmp_path / "in"], tmp_path / "st", engine=INLINE, model=birdnet,
                        progress=False)
    assert (first.computed, again.computed, again.cached, again.windows) == (5, 0, 5, 0)
    over = embed_files([tmp_path / "in"], tmp_path / "st", AudioSettings(overlap=1.5),
                       engine=INLINE, model=birdnet, progress=False)
    assert over.computed == 5
    with EmbeddingStore(tmp_path / "st") as store:
        entries = list(store)
    assert len(entries) == 10
    by_overlap = {}
    for e in entries:
        by_overlap.setdefault(e.meta["audio"]["overlap"], []).append(e)
    assert sorted(by_overlap) == [0.0, 1.5]
    a0 = next(e for e in by_overlap[0.0] if e.meta["relative"] == "a.wav")
    a15 = next(e for e in by_overlap[1.5] if e.meta["relative"] == "a.wav")
    assert len(a0.load()[0]) == 2 and len(a15.load()[0]) == 4


def test_bad_files_are_reported_and_the_batch_goes_on(tmp_path, make_audio, birdnet):
    make_audio("mix/good.wav", seconds=5.0)
    make_audio("mix/good2.wav", seconds=4.0, sr=192000, channels=2)
    make_audio("mix/phone.wav", seconds=4.0, sr=8000)
    make_audio("mix/short.wav", seconds=0.4)
    (tmp_path / "mix" / "empty.wav").write_bytes(b"")
    (tmp_path / "mix" / "text.mp3").write_text("not audio at all\n" * 50)
    (tmp_path / "mix" / "phone.m4a").write_bytes(b"\x00" * 64)
    x = chirp(12.0, 48000)
    x[10 * 48000] = np.inf  # corrupt late in the file: earlier parts must not survive
    make_audio("mix/inf.wav", data=x, subtype="FLOAT")
    summary = embed_files([tmp_path / "mix", tmp_path / "nowhere"], tmp_path / "st",
                          engine=eng.EngineSettings(workers=2, batch_size=4, chunk_windows=1),
                          model=birdnet, progress=False, echo=lambda m: None)
    assert summary.computed == 3
    failed = dict(summary.failed)
    assert set(failed) == {str(tmp_path / p) for p in (
        "mix/short.wav", "mix/empty.wav", "mix/text.mp3", "mix/phone.m4a", "mix/inf.wav",
        "nowhere")}
    assert "too short" in failed[str(tmp_path / "mix/short.wav")]
    assert "empty file" in failed[str(tmp_path / "mix/empty.wav")]
    assert "NaN or infinite" in failed[str(tmp_path / "mix/inf.wav")]
    log = (tmp_path / "st" / "error_log.txt").read_text()
    assert log.count("\tERROR\t") == 6 and "8000 Hz" in log and "\tWARNING\t" in log
    assert not list((tmp_path / "st").rglob("*.partial")), "partial results left in the store"
    assert sorted(entries_by_name(tmp_path / "st")) == ["mix/good.wav", "mix/good2.wav",
                                                         "mix/phone.wav"]


def test_finished_parts_of_an_interrupted_file_are_reused(tmp_path, make_audio, birdnet):
    p = make_audio("in/long.wav", seconds=100.0, sr=44100)
    settings = eng.EngineSettings(workers=1, batch_size=4, chunk_windows=4)
    ref = embed_files([p], tmp_path / "ref", engine=settings, model=birdnet, progress=False)
    key = ref.entries[0].meta["key"]
    # Fake an interruption: parts 0 and 2 were written, then the process died.
    reused = 0
    with EmbeddingStore(tmp_path / "st") as store:
        for part in (0, 2):
            src = ref.entries[0].parts()[part]
            with np.load(src) as z:
                store.write_part(key, part, z["starts"], z["embeddings"])
                reused += len(z["starts"])
    resumed = embed_files([p], tmp_path / "st", engine=settings, model=birdnet, progress=False)
    assert len(ref.entries[0].parts()) == 4  # one per 30-s block
    assert resumed.computed == 1 and resumed.windows == 34 - reused
    np.testing.assert_array_equal(resumed.entries[0].load()[1], ref.entries[0].load()[1])
    assert not list((tmp_path / "st").rglob("*.partial"))


def test_kill_9_then_rerun_finishes_with_nothing_lost(tmp_path, make_audio):
    """A real interruption: SIGKILL the CLI mid-run, rerun, compare with a clean run."""
    for i in range(8):
        make_audio(f"in/f{i}.wav", seconds=30.0 + i, sr=44100 if i % 2 else 48000)
    cmd = [sys.executable, "-m", "edgebird", "embed", str(tmp_path / "in"), "-q",
           "--workers", "1", "--batch-size", "4"]
    proc = subprocess.Popen(cmd + ["-o", str(tmp_path / "st")])
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "st").glob("entries/*/*[!l]/meta.json")):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done_before = len(entries_by_name(tmp_path / "st"))
    assert 0 < done_before < 8, "the kill should land mid-run"
    rerun = subprocess.run(cmd + ["-o", str(tmp_path / "st")], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{8 - done_before} embedded, {done_before} from the store" in rerun.stdout
    clean = subprocess.run(cmd + ["-o", str(tmp_path / "clean")], capture_output=True, text=True)
    assert clean.returncode == 0
    a, b = entries_by_name(tmp_path / "st"), entries_by_name(tmp_path / "clean")
    assert sorted(a) == sorted(b) == [f"f{i}.wav" for i in range(8)]
    for name in a:
        np.testing.assert_allclose(a[name].load()[1], b[name].load()[1], atol=1e-6)
    assert not list((tmp_path / "st").rglob("*.partial"))


def test_crop_modes_in_the_store(tmp_path, make_audio, birdnet):
    x = 0.001 * np.random.default_rng(0).standard_normal(48000 * 12).astype(np.float32)
    x[7 * 48000:8 * 48000] += chirp(1.0, 48000)[:, 0]  # a call in the third window
    make_audio("c/clip.wav", data=x)
    counts = {}
    for mode in ("segments", "first", "center", "smart"):
        s = embed_files([tmp_path / "c"], tmp_path / "st", AudioSettings(crop_mode=mode),
                        engine=INLINE, model=birdnet, progress=False)
        counts[mode] = s.entries[0].load()[0].tolist()
    assert counts == {"segments": [0.0, 3.0, 6.0, 9.0], "first": [0.0], "center": [4.5],
                      "smart": [6.0]}


def test_csv_output(tmp_path, make_audio, birdnet):
    make_audio("in/x.wav", seconds=4.0)
    embed_files([tmp_path / "in"], tmp_path / "st", engine=INLINE, model=birdnet,
                csv_dir=tmp_path / "csv", progress=False)
    lines = (tmp_path / "csv" / "x.wav.embeddings.csv").read_text().splitlines()
    assert lines[0] == "file,start,end,embedding"
    assert len(lines) == 3
    file_, start, end, values = lines[2].split(",", 3)
    assert (start, end) == ("3.00", "4.00")
    assert len(values.strip('"').split(",")) == 1024
    meta = json.loads(next((tmp_path / "st").glob("entries/*/*/meta.json")).read_text())
    assert meta["model"] == "birdnet-v2.4" and meta["n_windows"] == 2


def test_dead_worker_tasks_are_retried_then_failed(monkeypatch):
    """``_reap``: a task held by a crashed worker is retried once, then reported."""
    class Dead:
        def is_alive(self):
            return False
        exitcode = -9

    info = None
    task = eng.Task(0, 0, info, np.zeros(1, dtype=np.int64))
    key = (0, 0)
    procs, held, unresolved, attempts = {1: Dead()}, {1: {key}}, {key}, {key: 0}
    queued, started = [], []

    class Q:
        def put(self, t):
            queued.append(t)

    out = list(eng._reap(procs, held, {key: task}, unresolved, attempts, Q(),
                         lambda: started.append(1)))
    assert out == [] and queued == [task] and started == [1] and key in unresolved
    procs[2], held[2] = Dead(), {key}
    out = list(eng._reap(procs, held, {key: task}, unresolved, attempts, Q(),
                         lambda: started.append(1)))
    assert len(out) == 1 and "died (exit code -9) twice" in out[0].reason
    assert key not in unresolved


def test_spawned_workers_give_the_same_numbers(tmp_path, make_audio, birdnet, monkeypatch):
    """The path macOS, Windows and the GUI (threads running) take: spawn, not fork."""
    make_audio("in/a.wav", seconds=7.0, sr=44100)
    make_audio("in/b.wav", seconds=4.0)
    monkeypatch.setattr(eng, "_start_method", lambda: "spawn")
    spawned = embed_files([tmp_path / "in"], tmp_path / "sp", engine=TWO, model=birdnet,
                          progress=False)
    embed_files([tmp_path / "in"], tmp_path / "in1", engine=INLINE, model=birdnet,
                         progress=False)
    assert spawned.computed == 2 and not spawned.failed
    a, b = entries_by_name(tmp_path / "sp"), entries_by_name(tmp_path / "in1")
    for name in a:
        np.testing.assert_array_equal(a[name].load()[1], b[name].load()[1])


def test_a_cache_hit_names_the_file_asked_for(tmp_path, make_audio, birdnet):
    """The store is keyed by content: a copy elsewhere is a hit, reported under its own path."""
    import shutil

    first = make_audio("a/x.wav", seconds=4.0)
    copy = tmp_path / "b" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy(first, copy)
    quiet = dict(engine=INLINE, model=birdnet, progress=False,
                 echo=lambda m: None)
    embed_files([first], tmp_path / "store", **quiet)
    summary = embed_files([copy], tmp_path / "store", **quiet)
    assert summary.cached == 1
    assert [e.source for e in summary.entries] == [str(copy.resolve())]


def test_a_script_without_a_main_guard_fails_clearly_instead_of_hanging(tmp_path):
    """Under spawn, workers re-import the calling script; without ``if __name__ ==
    "__main__":`` each one dies at start-up. The pool used to replace them for ever (the
    run hung); now it stops with a message that says what to do."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    for i in range(3):
        sf.write(tmp_path / f"f{i}.wav", 0.1 * rng.standard_normal(48000 * 7), 48000)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import threading, time, glob\n"
        "threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # -> spawn\n"
        "from edgebird.audio import AudioSettings\n"
        "from edgebird.backbones.birdnet.model import BirdNET\n"
        "from edgebird.pipeline import engine as eng\n"
        "from edgebird.pipeline.embed import embed_files\n"
        f"files = sorted(glob.glob({str(tmp_path / '*.wav')!r}))\n"
        f"embed_files(files, {str(tmp_path / 'store')!r}, AudioSettings(),\n"
        "            eng.EngineSettings(workers=2), BirdNET(), progress=False)\n")
    try:
        r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail("the unguarded script hung")
    assert r.returncode != 0
    assert "exited at start-up" in r.stderr and '__name__ == "__main__"' in r.stderr, \
        r.stderr[-2000:]


def test_two_identical_files_each_get_their_own_entry(tmp_path, birdnet):
    """The store is keyed by content; two copies of one recording in one run (a clip put in
    two class folders) must both be in the summary under their own names, or training
    reports one of them as "not embedded" and drops its rows."""
    import shutil

    import soundfile as sf

    rng = np.random.default_rng(3)
    sf.write(tmp_path / "a.wav", 0.1 * rng.standard_normal(48000 * 4), 48000)
    shutil.copy(tmp_path / "a.wav", tmp_path / "b.wav")
    for workers in (1, 2):
        s = embed_files([tmp_path / "a.wav", tmp_path / "b.wav"], tmp_path / f"st{workers}",
                        engine=eng.EngineSettings(workers=workers), model=birdnet,
                        progress=False)
        assert sorted(Path(e.source).name for e in s.entries) == ["a.wav", "b.wav"]
        assert not s.failed
