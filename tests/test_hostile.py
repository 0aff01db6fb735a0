"""What a hostile batch found (issue 17): colliding outputs, skipped folders, truncated
files, changed settings counted as done, orphaned workers, output errors, Ctrl-C, messages.
Audio is generated here; kills, full disks and unreadable folders are simulated."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fakes import SR, FakeModel, levels_file

from edgebird import cli
from edgebird.audio import AudioSettings, find_audio_files, load, output_stems, probe
from edgebird.pipeline import analyze as an
from edgebird.pipeline import store as st
from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
from edgebird.pipeline.embed import embed_files
from edgebird.pipeline.engine import EngineSettings
from edgebird.pipeline.errorlog import OutputError
from edgebird.pipeline.segments import _AudioIndex

INLINE = EngineSettings(workers=1)
ROOT = Path(__file__).resolve().parents[1]


def analyze(inputs, out, echo=None, **kw):
    kw.setdefault("rtypes", ("csv",))
    return analyze_files(inputs, out, AnalyzeSettings(**kw), AudioSettings(), INLINE,
                         model=FakeModel(), progress=False, echo=echo or (lambda m: None))


def tables(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.BirdNET.results.csv"))


# -- 1. every input its own output --------------------------------------------------------
def test_same_stem_in_one_folder_keeps_the_extension(tmp_path):
    levels_file(tmp_path / "in" / "rec.wav", [0.1, 0.0])
    x = np.full(3 * SR, 0.1, dtype=np.float32)
    sf.write(tmp_path / "in" / "rec.flac", x, SR)
    levels_file(tmp_path / "in" / "solo.wav", [0.1])
    s = analyze([tmp_path / "in"], tmp_path / "out", combine=True)
    assert tables(tmp_path / "out") == ["rec.flac.BirdNET.results.csv",
                                       "rec.wav.BirdNET.results.csv", "solo.BirdNET.results.csv"]
    assert s.analyzed == 3
    combined = (tmp_path / "out" / "BirdNET_CombinedTable.csv").read_text().splitlines()
    assert len({ln.split(",")[-1] for ln in combined[1:]}) >= 1 and len(combined) > 3
    again = analyze([tmp_path / "in"], tmp_path / "out")
    assert (again.skipped, again.analyzed) == (3, 0)
    # segments finds the audio of each table by its output stem
    index = _AudioIndex(tmp_path / "in")
    assert index.resolve("", "rec.flac").name == "rec.flac"
    assert index.resolve("", "rec.wav").name == "rec.wav"
    assert index.resolve("", "solo").name == "solo.wav"


def test_old_single_table_of_two_inputs_is_not_counted_done(tmp_path):
    """Before the fix both inputs wrote ``rec.BirdNET...``: neither counts as done now."""
    levels_file(tmp_path / "in" / "rec.wav", [0.1])
    sf.write(tmp_path / "in" / "rec.flac", np.full(3 * SR, 0.1, dtype=np.float32), SR)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rec.BirdNET.results.csv").write_text("old\n")
    s = analyze([tmp_path / "in"], tmp_path / "out")
    assert (s.analyzed, s.skipped) == (2, 0)


def test_same_folder_names_and_same_file_names_from_several_inputs(tmp_path):
    levels_file(tmp_path / "x" / "A" / "a.wav", [0.1])
    levels_file(tmp_path / "y" / "A" / "a.wav", [0.0])
    levels_file(tmp_path / "p" / "rec.wav", [0.1])
    levels_file(tmp_path / "q" / "rec.wav", [0.0])
    inputs = [tmp_path / "x" / "A", tmp_path / "y" / "A", tmp_path / "p" / "rec.wav",
              tmp_path / "q" / "rec.wav"]
    files, _ = find_audio_files(inputs)
    assert [rel for _, rel in files] == ["A/a.wav", "A-2/a.wav", "rec.wav", "rec-2.wav"]
    assert find_audio_files(inputs)[0] == files  # deterministic
    s = analyze(inputs, tmp_path / "out")
    assert s.analyzed == 4 and not s.failed
    assert tables(tmp_path / "out") == ["A-2/a.BirdNET.results.csv", "A/a.BirdNET.results.csv",
                                       "rec-2.BirdNET.results.csv", "rec.BirdNET.results.csv"]


def test_output_stems_rule():
    assert output_stems(["a.wav", "sub/b.flac"]) == {"a.wav": "a", "sub/b.flac": "sub/b"}
    assert output_stems(["r.mp3", "R.wav", "s.wav"]) == {"r.mp3": "r.mp3", "R.wav": "R.wav",
                                                          "s.wav": "s"}
    # a kept extension that meets another file's stem is resolved too
    got = output_stems(["x.wav", "x.mp3", "x.wav.flac"])
    assert len(set(got.values())) == 3


# -- 2. folder symlinks, unreadable folders -------------------------------------------------
def test_folder_symlinks_are_followed_and_loops_end(tmp_path):
    levels_file(tmp_path / "elsewhere" / "b.wav", [0.1])
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    (tmp_path / "in" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "in" / "loop").symlink_to(tmp_path / "in")
    files, problems = find_audio_files([tmp_path / "in"])
    assert sorted(rel for _, rel in files) == ["a.wav", "linked/b.wav"]
    assert problems == []


def test_an_unreadable_folder_is_a_failure(tmp_path, monkeypatch):
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    levels_file(tmp_path / "in" / "locked" / "b.wav", [0.1])
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    s = analyze([tmp_path / "in"], tmp_path / "out")
    assert s.analyzed == 1
    assert len(s.failed) == 1 and s.failed[0][0].endswith("locked")
    assert "cannot read the folder" in s.failed[0][1]


# -- 3. a truncated MP3 -----------------------------------------------------------------------
@pytest.fixture
def cut_mp3(tmp_path) -> Path:
    x = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(60 * SR) / SR)).astype(np.float32)
    full = tmp_path / "full.mp3"
    try:
        sf.write(full, x, SR, format="MP3")
    except (sf.LibsndfileError, TypeError, ValueError):
        pytest.skip("this libsndfile cannot write MP3")
    data = full.read_bytes()
    cut = tmp_path / "in" / "cut.mp3"
    cut.parent.mkdir()
    cut.write_bytes(data[:len(data) // 10])
    full.unlink()
    return cut


def test_a_truncated_mp3_is_its_decoded_length(cut_mp3, tmp_path, capfd):
    info = probe(cut_mp3)
    assert 5.0 < info.duration < 7.0, info.duration  # not the header's 60 s
    assert any("truncated" in n and "60.00 s" in n for n in info.notes)
    decoded, _ = sf.read(cut_mp3, dtype="float32")
    np.testing.assert_array_equal(load(cut_mp3), decoded[:info.frames])
    capfd.readouterr()  # sf.read above is allowed to chatter
    log = []
    s = analyze([tmp_path / "in"], tmp_path / "out", echo=log.append)
    assert s.windows == 2 and abs(s.audio_seconds - info.duration) < 1e-9
    assert any("cut.mp3" in m and "truncated" in m for m in log)
    # libmpg123's own warning is reported with the file, not on the raw stderr
    assert any("cut.mp3" in m and "Xing" in m for m in log)
    assert "Xing" not in capfd.readouterr().err


def test_a_truncated_mp3_gets_the_too_short_check(cut_mp3, tmp_path):
    data = cut_mp3.read_bytes()
    cut_mp3.write_bytes(data[:len(data) // 10])  # ~0.6 s left
    s = analyze([tmp_path / "in"], tmp_path / "out")
    assert s.analyzed == 0 and "too short" in s.failed[0][1]


# -- 4. skipping means: made with the same model and settings --------------------------------
def test_changed_settings_are_redone_and_said(tmp_path):
    levels_file(tmp_path / "in" / "a.wav", [0.1, 0.0])
    analyze([tmp_path / "in"], tmp_path / "out")
    t0 = time.perf_counter()
    same = analyze([tmp_path / "in"], tmp_path / "out")
    assert same.skipped == 1 and time.perf_counter() - t0 < 2
    log = []
    other = analyze([tmp_path / "in"], tmp_path / "out", echo=log.append, min_conf=0.6)
    assert (other.analyzed, other.skipped) == (1, 0)
    assert any("other settings" in m and "analyzing them again" in m for m in log)
    csv = (tmp_path / "out" / "a.BirdNET.results.csv").read_text()
    assert "Beta" not in csv  # 0.5 < 0.6: the table is the new settings'
    again = analyze([tmp_path / "in"], tmp_path / "out", min_conf=0.6)
    assert again.skipped == 1

    class Other(FakeModel):
        fingerprint = "fake:2"

    log = []
    s = analyze_files([tmp_path / "in"], tmp_path / "out", AnalyzeSettings(min_conf=0.6,
                      rtypes=("csv",)), AudioSettings(), INLINE, model=Other(),
                      progress=False, echo=log.append)
    assert s.analyzed == 1 and any("another model" in m for m in log)


def test_tables_with_no_record_are_redone(tmp_path):
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    analyze([tmp_path / "in"], tmp_path / "out")
    (tmp_path / "out" / an.RECORD_FILE).unlink()
    log = []
    s = analyze([tmp_path / "in"], tmp_path / "out", echo=log.append)
    assert s.analyzed == 1 and any("no record" in m for m in log)


# -- 9 and 13. orphaned workers, Ctrl-C -------------------------------------------------------
SLOW_RUN = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from fakes import FakeModel
    import edgebird.pipeline.models as models
    from edgebird import cli

    class Slow(FakeModel):
        def embed(self, batch):
            time.sleep(0.05)
            return super().embed(batch)

    models.load_model = lambda *a, **k: (Slow(), None)
    sys.exit(cli.main(["analyze", *sys.argv[1:3], "-o", sys.argv[3], "--workers", "2",
                       "--rtype", "csv", "-q", "--min-conf", "0.5"]))
""")


def _children(pid: int) -> set[int]:
    kids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.add(int(d.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_slow(tmp_path) -> tuple[subprocess.Popen, set[int]]:
    a = levels_file(tmp_path / "in" / "long1.wav", [0.1, 0.0] * 200)
    b = levels_file(tmp_path / "in" / "long2.wav", [0.0, 0.1] * 200)
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN.format(tests=str(ROOT / "tests")))
    proc = subprocess.Popen([sys.executable, str(script), str(a), str(b), str(tmp_path / "out")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 60
    workers: set[int] = set()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.1)
        workers = {k for k in _children(proc.pid) if _alive(k)}
    assert len(workers) >= 2, "the workers should have started"
    time.sleep(1.0)  # they are working now
    return proc, workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_is_killed(tmp_path):
    proc, workers = _start_slow(tmp_path)
    proc.kill()
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind if the test fails
        os.kill(w, signal.SIGKILL)
    assert not left, "workers outlived their killed parent"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigint_to_the_main_process_stops_it_quickly_and_cleanly(tmp_path):
    proc, workers = _start_slow(tmp_path)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    took = time.time() - t0
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert took < 3, f"took {took:.1f} s to stop"
    time.sleep(0.5)
    assert not [w for w in workers if _alive(w)]


# -- 10. output errors ---------------------------------------------------------------------
def _cli(monkeypatch, capsys, *args) -> tuple[int, str]:
    import edgebird.pipeline.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: (FakeModel(), None))
    code = cli.main([*map(str, args), "-q"])
    return code, capsys.readouterr().err


def test_output_naming_a_file_is_a_bad_option(tmp_path, monkeypatch, capsys):
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    (tmp_path / "taken").write_text("x")
    code, err = _cli(monkeypatch, capsys, "analyze", tmp_path / "in", "-o", tmp_path / "taken")
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    code, err = _cli(monkeypatch, capsys, "embed", tmp_path / "in", "-o", tmp_path / "taken")
    assert code == 2 and "is a file, not a folder" in err


def test_full_disk_says_what_and_where_and_logs_it(tmp_path, monkeypatch, capsys):
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    levels_file(tmp_path / "in" / "b.wav", [0.1])

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(an, "atomic_write_bytes", full)
    code, err = _cli(monkeypatch, capsys, "analyze", tmp_path / "in", "-o", tmp_path / "out")
    assert code == 1
    assert "No space left on device" in err and str(tmp_path / "out") in err
    assert "Traceback" not in err
    assert "No space left on device" in (tmp_path / "out" / "error_log.txt").read_text()


def test_read_only_output_folder(tmp_path, monkeypatch, capsys):
    levels_file(tmp_path / "in" / "a.wav", [0.1])
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() == 0:  # root writes anyway: simulate the file system's answer

        def refuse(path, data):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        monkeypatch.setattr(an, "atomic_write_bytes", refuse)
    else:
        out.chmod(0o555)
    try:
        code, err = _cli(monkeypatch, capsys, "analyze", tmp_path / "in", "-o", out)
    finally:
        out.chmod(0o755)
    assert code == 1 and "Permission denied" in err and str(out) in err
    assert "Traceback" not in err


def test_embed_full_disk_is_an_output_error(tmp_path, monkeypatch):
    levels_file(tmp_path / "in" / "a.wav", [0.1, 0.1])
    real = st.atomic_write_bytes

    def full(path, data):
        if Path(path).suffix == ".npz":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(st, "atomic_write_bytes", full)
    with pytest.raises(OutputError, match="No space left on device"):
        embed_files([tmp_path / "in"], tmp_path / "st", engine=INLINE, model=FakeModel(),
                    progress=False, echo=lambda m: None)
    assert "No space left" in (tmp_path / "st" / "error_log.txt").read_text()
    monkeypatch.setattr(st, "atomic_write_bytes", real)  # space freed: the rerun completes
    s = embed_files([tmp_path / "in"], tmp_path / "st", engine=INLINE, model=FakeModel(),
                    progress=False, echo=lambda m: None)
    assert s.computed == 1 and not s.failed


# -- 14. messages, empty folders, a damaged store ---------------------------------------------
def test_random_bytes_named_mp3(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(5000))
    s = analyze([tmp_path / "in"], tmp_path / "out")
    reason = s.failed[0][1]
    assert reason.startswith("not an audio file, or damaged"), reason
    assert "regular file" not in reason and "pipe" not in reason


def test_a_folder_with_no_audio_is_a_failure(tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    code, err = _cli(monkeypatch, capsys, "analyze", tmp_path / "empty", "-o", tmp_path / "out")
    assert code == 1
    assert "no audio files found" in (tmp_path / "out" / "error_log.txt").read_text()


def test_a_truncated_store_part_is_recomputed_not_a_hit(tmp_path):
    levels_file(tmp_path / "in" / "a.wav", [0.1, 0.0, 0.1])
    kw = dict(engine=INLINE, model=FakeModel(), progress=False, echo=lambda m: None)
    first = embed_files([tmp_path / "in"], tmp_path / "st", **kw)
    want = first.entries[0].load()
    part = first.entries[0].parts()[0]
    part.write_bytes(part.read_bytes()[:40])
    again = embed_files([tmp_path / "in"], tmp_path / "st", **kw)
    assert (again.computed, again.cached) == (1, 0)
    got = again.entries[0].load()
    np.testing.assert_array_equal(got[1], want[1])
    # a part cut short in an interrupted entry is computed again too
    store = st.EmbeddingStore(tmp_path / "st2")
    store.write_part("k" * 32, 0, np.zeros(1), np.zeros((1, 2)))
    p = next((tmp_path / "st2").rglob("part-00000.npz"))
    p.write_bytes(p.read_bytes()[:30])
    assert store.done_parts("k" * 32) == set()
