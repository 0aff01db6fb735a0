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


def evaluation_tables(folder):
    """Two result tables and their annotations: at 0.25, r1 has a TP (0.9) and an FP (0.7),
    r2 a TP (0.3). Returns ``(results folder, annotations file)``."""
    res = folder / "results"
    res.mkdir()
    fmt = FORMATS["table"]
    for name, dets in (("r1", [(0, 3, 0.9), (9, 12, 0.7)]), ("r2", [(0, 3, 0.3)])):
        audio = f"/audio/{name}.wav"
        rows = [Detection(audio, a, b, "Alpha a_Alpha", c) for a, b, c in dets]
        (res / f"{name}{fmt.suffix}").write_text(fmt.render(rows, TableContext(audio)))
    ann = folder / "ann.csv"
    ann.write_text("file,begin,end,label\nr1.wav,1,4,Alpha a\nr2.wav,0,2,Alpha a\n")
    return res, ann


def test_evaluate_tab_gives_the_report_plots_and_thresholds(session, tmp_path):
    res, ann = evaluation_tables(tmp_path)
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


def test_an_untouched_time_range_means_the_whole_clip():
    assert loop.query_range(None, None) == (None, None)
    assert loop.query_range(0, 0) == (None, None)  # what the empty number boxes send
    assert loop.query_range(None, 4) == (0.0, 4.0) and loop.query_range(2, 5.5) == (2.0, 5.5)


def _hits(path, n: int, seconds: float = 3.0) -> list:
    from edgebird.search.run import Hit

    return [Hit(i + 1, str(path), float(i), float(i) + seconds, 0.9 - 0.01 * i) for i in range(n)]


def test_result_cards_show_a_spectrogram_and_a_clip_of_each_window(session, make_audio):
    """Each card's clip is the 3-s window with 1 s either side (less at the recording's
    start); the cards stop at MAX_CARDS; a recording gone since ``embed`` says so."""
    wav = make_audio("rec.wav", seconds=20.0)
    hits = _hits(wav, loop.MAX_CARDS + 3)
    cards = loop.result_cards(session, hits)
    assert len(cards) == loop.MAX_CARDS
    for card, x in zip(cards, hits, strict=False):
        assert open(card.picture, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        info = sf.info(card.clip)
        want = (x.end + 1.0) - max(0.0, x.start - 1.0)
        assert info.samplerate == 48000 and abs(info.duration - want) < 1e-3, card
        assert f"#{x.rank}" in card.title and "rec.wav" in card.title
    assert "similarity 0.900" in cards[0].title
    gone = loop.result_cards(session, _hits(wav.parent / "moved.wav", 1))
    assert gone[0].picture == "" and "cannot read the recording" in gone[0].title


def test_marking_a_result_again_moves_its_clip(make_audio, tmp_path):
    """Right, then Wrong on the same result: one clip, in Negative/ (not one in each)."""
    wav = make_audio("rec.wav", seconds=12.0)
    hits = _hits(wav, 3)
    train = tmp_path / "train"
    first = loop.mark_hit(hits, 0, str(train), "Alpha", True)
    assert "Alpha/Positive/" in first
    again = loop.mark_hit(hits, 0, str(train), "Alpha", False, previous=first)
    assert "Alpha/Negative/" in again and not (tmp_path / first).exists()
    assert [p.parent.name for p in train.rglob("*.wav")] == ["Negative"]
    loop.mark_hit(hits, 1, str(train), "Alpha", True)
    marks, words = loop._mark(hits, {0: again}, 2, str(train), "Alpha", True)
    assert set(marks) == {0, 2} and words.startswith("marked right: Alpha/Positive/")
    assert sorted(p.parent.name for p in train.rglob("*.wav")) == ["Negative", "Positive",
                                                                   "Positive"]
    with pytest.raises(h.UserError, match="training folder"):
        loop.mark_hit(hits, 0, "", "Alpha", True)


def _reviewed(folder, species: str, right: list[float], wrong: list[float]) -> None:
    for verdict, scores in (("Positive", right), ("Negative", wrong)):
        d = folder / species / verdict
        d.mkdir(parents=True, exist_ok=True)
        for i, c in enumerate(scores):
            (d / f"{c:.3f}_{i}_rec_{i * 3:.2f}s_{i * 3 + 3:.2f}s.wav").write_bytes(b"")


def _classifier(folder, labels: list[str], thresholds: dict | None):
    from edgebird.backbones.birdnet import graph as tflite_graph

    layers = [(np.zeros((1024, len(labels)), np.float32), np.zeros(len(labels), np.float32),
               False)]
    model = folder / "Mine.tflite"
    model.write_bytes(tflite_graph.dense_head_model(layers))
    (folder / "Mine_Labels.txt").write_text("\n".join(labels) + "\n")
    if thresholds is not None:
        (folder / "Mine_Thresholds.csv").write_text(
            "Class,Threshold\n" + "".join(f"{c},{t}\n" for c, t in thresholds.items()))
    return model


def test_calibrated_thresholds_go_to_the_classifier_that_scored_the_clips(session, tmp_path):
    """A species folder with right and wrong clips gets the threshold of its fit for the
    wanted precision; one without wrong clips keeps its own; the trained file is kept once."""
    from edgebird.core.labels import read_thresholds
    from edgebird.training.review import calibrate, reviewed

    review = tmp_path / "review"
    _reviewed(review, "Alpha", [0.55, 0.7, 0.8, 0.85, 0.9, 0.95, 0.45], [0.1, 0.2, 0.3, 0.6, 0.4])
    _reviewed(review, "Beta", [0.8, 0.9], [])
    model = _classifier(tmp_path, ["Alpha a_Alpha", "Beta b_Beta", "Gamma c_Gamma"],
                        {"Alpha a_Alpha": 0.42, "Beta b_Beta": 0.37, "Gamma c_Gamma": 0.5})
    words = h.use_calibrated_thresholds(session, str(review), 0.9, "custom", str(model))
    want = calibrate(*reviewed(review / "Alpha")).threshold(0.9)
    got = read_thresholds(tmp_path / "Mine_Thresholds.csv")
    assert abs(got["Alpha a_Alpha"] - want) < 1e-3 and 0.4 < want < 0.95
    assert got["Beta b_Beta"] == 0.37 and got["Gamma c_Gamma"] == 0.5
    kept = tmp_path / "Mine_Thresholds.trained.csv"
    assert read_thresholds(kept)["Alpha a_Alpha"] == 0.42
    assert "Alpha" in words and "Beta (2 right, 0 wrong" in words and kept.name in words
    assert "calibrated" in h.thresholds_words(model)
    h.use_calibrated_thresholds(session, str(review), 0.95, "custom", str(model))
    assert read_thresholds(kept)["Alpha a_Alpha"] == 0.42  # the trained ones, not the 0.9 ones
    with pytest.raises(h.UserError, match="BirdNET V2.4 itself"):
        h.use_calibrated_thresholds(session, str(review), 0.9, "birdnet", None)
    other = tmp_path / "other"
    other.mkdir()
    unrelated = _classifier(other, ["Delta d_Delta"], None)
    with pytest.raises(h.UserError, match="nothing written.*not a class of Mine.tflite"):
        h.use_calibrated_thresholds(session, str(review), 0.9, "custom", str(unrelated))
    assert not (other / "Mine_Thresholds.csv").exists()


def test_retrain_says_which_clips_are_not_reviewed(tmp_path, make_audio):
    make_audio("review/Alpha/0.900_1_rec_0.00s_3.00s.wav", seconds=3.0)
    make_audio("review/Alpha/Positive/0.800_2_rec_3.00s_6.00s.wav", seconds=3.0)
    words = h.retrain_words(str(tmp_path / "review"), "2 classes")
    assert words.startswith("2 classes\nnote: clips not reviewed yet") and "Alpha: 1" in words
    assert "chooses its own thresholds" in words
