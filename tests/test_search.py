"""edgebird search: exact top-k, limits, precision, the index, settings checks, the CLI."""

from __future__ import annotations

import csv
import importlib.util
import io
import types
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgebird.audio import AudioSettings
from edgebird.pipeline.store import EmbeddingStore, entry_key
from edgebird.search.query import parse_query
from edgebird.search.run import SearchSettings, select_entries
from edgebird.search.scan import StoreMatrix, TopK, entry_blocks, exact_search, normalise

FP = "test-model"


def fake_store(root: Path, sizes=(300, 50, 700, 20), dim: int = 32, seed: int = 0,
               fingerprint: str = FP, audio: AudioSettings = AudioSettings(),
               clustered: bool = False, tag: str = "") -> tuple[EmbeddingStore, list]:
    """Random embeddings written as real store entries; returns the store and, per entry in
    the store's order, (starts, embeddings)."""
    rng = np.random.default_rng(seed)
    store = EmbeddingStore(root)
    data = []
    centres = rng.standard_normal((20, dim))
    for i, n in enumerate(sizes):
        starts = np.arange(n) * 3.0
        if clustered:
            embs = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
        else:
            embs = rng.standard_normal((n, dim)) * rng.uniform(0.5, 3.0, (n, 1))
        embs = embs.astype(np.float32)
        key = entry_key(f"digest{tag}{i}", audio.key(), fingerprint)
        # two parts, out of order: entries are read in time order whatever the parts
        half = n // 2
        store.write_part(key, 1, starts[half:], embs[half:])
        store.write_part(key, 0, starts[:half], embs[:half])
        store.commit(key, {"source": f"/rec{tag}{i}.wav", "relative": f"rec{i}.wav",
                           "digest": f"digest{tag}{i}", "duration": n * 3.0,
                           "n_windows": n, "audio": audio.key(), "model": "fake",
                           "model_fingerprint": fingerprint, "embedding_dim": dim})
        data.append((f"/rec{tag}{i}.wav", starts, embs))
    by_source = {src: (st, e) for src, st, e in data}
    return store, [by_source[e.source] for e in store if e.source in by_source]


def brute_force(data, q, k, per_recording=None, min_score=None):
    rows = [(float(s), i, float(c))
            for i, (starts, embs) in enumerate(data)
            for s, c in zip(starts, normalise(embs) @ q, strict=True)]
    rows.sort(key=lambda r: (-r[2], r[1], r[0]))
    out, per = [], {}
    for s, i, c in rows:
        if min_score is not None and c < min_score:
            continue
        if per_recording is not None and per.get(i, 0) >= per_recording:
            continue
        per[i] = per.get(i, 0) + 1
        out.append((i, s, c))
        if len(out) == k:
            break
    return out


def run_exact(store, q, k, chunk_rows=8192, precision="float32", exclude=None, **kw):
    entries = list(store)
    top = exact_search(q, entry_blocks(entries, chunk_rows, precision, exclude), TopK(k, **kw),
                       chunk_rows)
    return top.hits()


def _query(dim=32, seed=1):
    return normalise(np.random.default_rng(seed).standard_normal((1, dim)))[0]


def _same(a, b, tol=1e-5):
    assert [(r, s) for r, s, _ in a] == [(r, s) for r, s, _ in b]
    assert np.allclose([c for *_, c in a], [c for *_, c in b], atol=tol)


def test_exact_top_k_equals_brute_force_and_chunking_changes_nothing(tmp_path):
    store, data = fake_store(tmp_path / "s")
    q = _query()
    want = brute_force(data, q, 25)
    for chunk in (65536, 1000, 64, 7, 1):
        _same(run_exact(store, q, 25, chunk_rows=chunk), want)


def test_per_recording_and_min_score(tmp_path):
    store, data = fake_store(tmp_path / "s")
    q = _query(seed=3)
    got = run_exact(store, q, 12, chunk_rows=50, per_recording=2)
    _same(got, brute_force(data, q, 12, per_recording=2))
    assert max(np.bincount([r for r, _, _ in got])) <= 2
    got = run_exact(store, q, 500, chunk_rows=100, min_score=0.3)
    assert got and min(c for *_, c in got) >= 0.3
    _same(got, brute_force(data, q, 500, min_score=0.3))


def test_exclusion_leaves_out_overlapping_windows(tmp_path):
    store, data = fake_store(tmp_path / "s")
    starts, embs = data[2]
    q = normalise(embs[10:12].mean(axis=0, keepdims=True))[0]  # windows at 30 and 33 s
    hits = run_exact(store, q, 50, exclude={2: (30.0, 36.0)})
    assert not [s for r, s, _ in hits if r == 2 and 28.0 < s < 36.0]
    assert run_exact(store, q, 1)[0][:2] in ((2, 30.0), (2, 33.0))


def test_float16_close_to_float32_and_in_memory_equals_the_scan(tmp_path):
    store, data = fake_store(tmp_path / "s")
    q = _query(seed=5)
    a = run_exact(store, q, 20)
    b = run_exact(store, q, 20, precision="float16")
    assert np.allclose([c for *_, c in a], [c for *_, c in b], atol=2e-3)
    assert len({(r, s) for r, s, _ in a} & {(r, s) for r, s, _ in b}) >= 18
    for precision, want in (("float32", a), ("float16", b)):
        m = StoreMatrix(list(store), precision)
        _same(exact_search(q, m.blocks(100), TopK(20), 100).hits(), want, 1e-4)
    m16, m32 = StoreMatrix(list(store), "float16"), StoreMatrix(list(store))
    assert m16.vectors.nbytes * 2 == m32.vectors.nbytes
    ex = exact_search(q, m32.blocks(64, {2: (30.0, 36.0)}), TopK(2000), 64).hits()
    assert len(ex) == sum(len(s) for s, _ in data) - 2  # the windows at 30 and 33 s


def test_index_recall_on_clustered_data(tmp_path):
    pytest.importorskip("usearch")
    from edgebird.search.index import cached_index

    store, data = fake_store(tmp_path / "s", sizes=(2000, 1500, 1500), dim=64, clustered=True)
    entries = list(store)
    messages = []
    index = cached_index(store.root, entries, 64, echo=messages.append)
    assert len(index) == 5000 and messages  # built
    again = cached_index(store.root, entries, 64, echo=messages.append)
    assert len(messages) == 1 and len(again) == 5000  # loaded from the cache
    recalls = []
    for seed in range(10):
        q = normalise(data[seed % 3][1][seed * 7: seed * 7 + 1])[0]
        exact = {(r, s) for r, s, _ in run_exact(store, q, 10)}
        approx = {(r, s) for r, s, _ in again.search(q, TopK(10)).hits()}
        recalls.append(len(exact & approx) / 10)
    assert np.mean(recalls) >= 0.9
    q = _query(64)
    capped = again.search(q, TopK(5, per_recording=1)).hits()
    assert len(capped) == 3 and len({r for r, _, _ in capped}) == 3


def test_settings_groups_and_fingerprint_mismatch(tmp_path):
    model = types.SimpleNamespace(fingerprint=FP, name="fake")
    store, _ = fake_store(tmp_path / "s", sizes=(10, 10))
    fake_store(tmp_path / "s", sizes=(5,), fingerprint="other", tag="o")
    chosen, skipped = select_entries(list(store), model, SearchSettings())
    assert len(chosen) == 2 and skipped == 1
    other = types.SimpleNamespace(fingerprint="third", name="birdnet")
    with pytest.raises(ValueError, match="another model"):
        select_entries(list(store), other, SearchSettings())
    fake_store(tmp_path / "s", sizes=(5,), audio=AudioSettings(fmin=500.0), tag="b")
    with pytest.raises(ValueError, match="several bandpasses"):
        select_entries(list(store), model, SearchSettings())
    chosen, skipped = select_entries(list(store), model, SearchSettings(fmin=500.0))
    assert len(chosen) == 1 and skipped == 3


def test_parse_query():
    assert parse_query("a.wav:12.5-15.5").span() == (12.5, 15.5)
    assert parse_query("a.wav", 1.0, 4.0).span() == (1.0, 4.0)
    assert parse_query("a.wav", None, 4.0).span() == (0.0, 4.0)
    assert parse_query("a.wav").span() == (0.0, np.inf)
    with pytest.raises(ValueError, match="bad time range"):
        parse_query("a.wav:5-2")


# -- the CLI on real BirdNET embeddings of synthetic songs ------------------------------------
@pytest.fixture(scope="module")
def song_store(tmp_path_factory):
    from edgebird import synth
    from edgebird.pipeline.embed import embed_files
    from edgebird.pipeline.engine import EngineSettings

    root = tmp_path_factory.mktemp("songs")
    rng = np.random.default_rng(0)
    songs = list(synth.SONGS)[:2]
    files = {}
    for name, song in (("a1", songs[0]), ("a2", songs[0]), ("b1", songs[1])):
        p = root / "audio" / f"{name}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        audio = synth.clip(song, rng, seconds=9.0, snr_db=30.0, calls=6)
        sf.write(p, audio, synth.SR, subtype="PCM_16")
        files[name] = p
    summary = embed_files([root / "audio"], root / "store", engine=EngineSettings(workers=1),
                          progress=False, echo=lambda m: None)
    assert not summary.failed
    return root, files


def _cli(*argv) -> tuple[int, str]:
    from edgebird.cli import main

    buf = io.StringIO()
    with redirect_stdout(buf):
        status = main(list(argv))
    return status, buf.getvalue()


@pytest.mark.integration
def test_cli_end_to_end_with_a_clip_query(song_store, tmp_path, capsys):
    from edgebird.training.dataset import scan_folder

    root, files = song_store
    status, out = _cli("search", str(root / "store"), f"{files['a1']}:0-3", "-k", "4",
                       "-o", str(tmp_path / "hits.csv"), "--clips", str(tmp_path / "clips"))
    assert status == 0, out
    rows = list(csv.DictReader(open(tmp_path / "hits.csv")))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert list(rows[0]) == ["rank", "file", "start", "end", "score"]
    # its own windows (0-3 s and what overlaps it) are left out, and said so
    assert not [r for r in rows if r["file"] == str(files["a1"]) and float(r["start"]) < 3]
    assert "left out" in out
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert len(list((tmp_path / "clips").glob("*.wav"))) == 4
    info = sf.info(next((tmp_path / "clips").glob("*.wav")))
    assert info.samplerate == 48000
    # the whole of a1 (its windows averaged) is nearest to the other file of the same song
    status, out = _cli("search", str(root / "store"), str(files["a1"]), "-k", "1")
    assert status == 0 and "a2.wav" in out.splitlines()[1], out
    if importlib.util.find_spec("usearch"):  # the index gives the same answer here
        status, out_ix = _cli("search", str(root / "store"), str(files["a1"]), "-k", "1",
                              "--index")
        def first(text: str) -> str:  # rank, file, start, end (the index's scores are f16)
            return text.splitlines()[1].rsplit(",", 1)[0]

        assert status == 0 and first(out_ix) == first(out), out_ix
        assert list((root / "store" / "search-index").glob("*.usearch"))

    train = tmp_path / "train"
    for label, neg in (("Song A", False), ("Song A", True)):
        args = ["search", str(root / "store"), str(files["a2"]), "-k", "3",
                "--per-recording", "1", "--to-training", str(train), "--label", label]
        status, out = _cli(*(args + ["--negative"] if neg else args))
        assert status == 0, out
    assert len(list((train / "Song A").glob("*.wav"))) == 2  # a2 itself is left out
    assert len(list((train / "-Song A").glob("*.wav"))) == 2
    status, out = _cli("search", str(root / "store"), str(files["b1"]), "-k", "2",
                       "--to-training", str(train), "--label", "Song B")
    assert status == 0, out
    ts = scan_folder(train)  # what edgebird train reads
    assert ts.classes == ["Song A", "Song B"] and len(ts.files) == 6
    assert sum(1 for f in ts.files if f.negatives == frozenset(["Song A"])) == 2


@pytest.mark.integration
def test_cli_errors(song_store, tmp_path, capsys):
    root, files = song_store
    assert _cli("search", str(tmp_path / "nowhere"), str(files["a1"]))[0] == 2
    assert "no embedding store" in capsys.readouterr().err
    assert _cli("search", str(root / "store"), f"{files['a1']}:4-2")[0] == 2
    assert _cli("search", str(root / "store"), f"{files['a1']}:50-60")[0] == 2
    assert _cli("search", str(root / "store"), str(files["a1"]), "--to-training", "x")[0] == 2
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert _cli("search", str(root / "store"), str(bad))[0] == 1
    assert "query failed" in capsys.readouterr().err
    assert _cli("search", str(root / "store"), str(tmp_path / "missing.wav"))[0] == 1


@pytest.mark.integration
def test_devbirds_query_finds_the_same_species(devbirds, tmp_path):
    """5 species x 5 recordings (6-s clips, 50 windows): a query with the first 3 s of one
    recording per species; most of the top 5 (at most 2 per recording) are that species."""
    from edgebird.pipeline.embed import embed_files
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.search import search
    from edgebird.search.query import Query

    species = sorted(p for p in devbirds.iterdir() if p.is_dir())[:5]
    files = [f for sp in species for f in sorted(sp.glob("*.mp3"))[:5]]
    summary = embed_files(files, tmp_path / "store", engine=EngineSettings(workers=2),
                          progress=False, echo=lambda m: None)
    assert not summary.failed
    shares = []
    for query in files[::5]:
        result = search(tmp_path / "store", [Query(query, 0.0, 3.0)],
                        SearchSettings(k=5, per_recording=2))
        assert len(result.hits) == 5 and result.excluded
        same = [h for h in result.hits if Path(h.file).parent == query.parent]
        shares.append(len(same) / 5)
        assert len(same) >= 3, (query, [(Path(h.file).parent.name, h.score)
                                        for h in result.hits])
    assert np.mean(shares) >= 0.8
