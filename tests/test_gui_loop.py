"""The GUI's Evaluate and Search tabs (issue 20's loop): their handlers, as the buttons call
them, and that the app builds with both tabs."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio")

from edgebird.gui import handlers as h  # noqa: E402
from edgebird.gui import loop  # noqa: E402

from edgebird.core.scores import Detection  # noqa: E402
from edgebird.core.writers.formats import FORMATS, TableContext  # noqa: E402


@pytest.fixture
def session(tmp_path):
    return h.Session(tmp_path / "work")


def test_evaluate_tab_gives_the_report_plots_and_thresholds(session, tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    fmt = FORMATS["table"]
    for name, dets in (("r1", [(0, 3, 0.9), (9, 12, 0.7)]), ("r2", [(0, 3, 0.3)])):
        audio = f"/audio/{name}.wav"
        rows = [Detection(audio, a, b, "Alpha a_Alpha", c) for a, b, c in dets]
        (res / f"{name}{fmt.suffix}").write_text(fmt.render(rows, TableContext(audio)))
    ann = tmp_path / "ann.csv"
    ann.write_text("file,begin,end,label\nr1.wav,1,4,Alpha a\nr2.wav,0,2,Alpha a\n")
    text, pr, thr, files = loop.run_evaluation(session, str(res), str(ann), None, 0.9)
    # at the default 0.25: r1 TP (0.9) and FP (0.7); r2 TP (0.3)
    assert "| Alpha a | 0.25 | 2 | 2 | 1 | 0 |" in text, text
    assert pr.endswith("pr_curve.png") and thr.endswith("threshold_curve.png")
    names = sorted(p.rsplit("/", 1)[-1] for p in files)
    assert names == ["EVALUATION.md", "evaluation.csv", "thresholds_for_target_precision.csv"]
    with pytest.raises(h.UserError, match="does not exist"):
        loop.run_evaluation(session, str(tmp_path / "nothing"), str(ann), None, 0.9)
    with pytest.raises(h.UserError, match="choose"):
        loop.run_evaluation(session, "", str(ann), None, 0.9)
    bad = tmp_path / "bad.csv"
    bad.write_text("no,columns\n")
    with pytest.raises(h.UserError):
        loop.run_evaluation(session, str(res), str(bad), None, 0.9)


@pytest.mark.integration
def test_search_tab_finds_and_marks_into_positive_and_negative(tmp_path):
    """Real BirdNET embeddings of synthetic songs: the query's song ranks first, and marking
    writes clips that ``train`` reads as positives and hard negatives."""
    from edgebird import synth
    from edgebird.pipeline.embed import embed_files
    from edgebird.pipeline.engine import EngineSettings
    from edgebird.training.dataset import scan_folder

    rng = np.random.default_rng(0)
    songs = list(synth.SONGS)[:2]
    files = {}
    for name, song in (("a1", songs[0]), ("a2", songs[0]), ("b1", songs[1])):
        p = tmp_path / "audio" / f"{name}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, synth.clip(song, rng, seconds=9.0, snr_db=30.0, calls=6), synth.SR)
        files[name] = p
    store = tmp_path / "store"
    embed_files([tmp_path / "audio"], store, engine=EngineSettings(workers=1), progress=False,
                echo=lambda m: None)
    hits, text = loop.run_search(str(store), str(files["a1"]), None, None, 4, 2)
    assert "results" in text and len(hits) == 4
    assert hits[0].file.endswith("a2.wav")
    rows = loop.hit_rows(hits)
    assert [r[0] for r in rows] == [1, 2, 3, 4] and rows[0][1] == "a2.wav"
    train = tmp_path / "train"
    loop.mark_hit(hits, 0, str(train), "Song A", True)
    b = next(i for i, x in enumerate(hits) if x.file.endswith("b1.wav"))
    loop.mark_hit(hits, b, str(train), "Song A", False)
    loop.mark_hit(hits, b, str(train), "Song B", True)
    assert (train / "Song A" / "Positive").is_dir() and (train / "Song A" / "Negative").is_dir()
    ts = scan_folder(train)
    assert ts.classes == ["Song A", "Song B"] and len(ts.files) == 3
    assert sum(1 for f in ts.files if f.negatives == frozenset(["Song A"])) == 1
    with pytest.raises(h.UserError, match="select a result"):
        loop.mark_hit(hits, None, str(train), "Song A", True)
    with pytest.raises(h.UserError, match="store"):
        loop.run_search(str(tmp_path / "nope"), str(files["a1"]), None, None, 4, 2)
    with pytest.raises(h.UserError):
        loop.run_search(str(store), str(files["a1"]), 5, 2, 4, 2)  # end before start


def test_app_has_the_evaluate_and_search_tabs(session):
    from edgebird.gui.app import build_app

    app = build_app(session)
    ids = {getattr(b, "id", None) for b in app.blocks.values()}
    assert {"evaluate", "search"} <= ids


def test_review_tab_has_retrain_into_the_train_tab(session):
    """Review -> Retrain: the button exists with its text, and the check it runs on the
    reviewed folder is the Train tab's (a reviewed Positive/Negative folder trains as it is)."""
    from edgebird.gui.app import build_app

    app = build_app(session)
    labels = [getattr(b, "value", None) for b in app.blocks.values()]
    assert any("retrain" in str(v).lower() for v in labels)
