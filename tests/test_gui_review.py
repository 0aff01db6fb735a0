"""The Review tab (issue 18.6): spectrogram, file and score, counts, Undo, skip, shortcuts and a
clear end, through the tab's own functions on clips made in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio")

from edgebird.gui import handlers as h  # noqa: E402
from edgebird.gui import review_tab as rt  # noqa: E402


@pytest.fixture
def clips(tmp_path) -> Path:
    folder = tmp_path / "clips" / "Alpha"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, conf in enumerate((0.91, 0.55, 0.78)):
        sf.write(folder / f"{conf:.3f}_{i}_rec_{3 * i:.2f}s_{3 * i + 3:.2f}s.wav",
                 0.1 * rng.standard_normal(3 * 48000).astype(np.float32), 48000)
    return tmp_path / "clips"


def test_a_clip_shows_its_spectrogram_file_score_and_counts(tmp_path, clips):
    session = h.Session(tmp_path / "work")
    view = rt.clip_view(session, str(clips), "Alpha")
    assert Path(view.path).name.startswith("0.910_0")  # most confident first
    assert "score 0.910" in view.info and "0 right, 0 wrong, 3 to go" in view.info
    assert view.left == 3 and view.audio[0] == 48000
    assert Path(view.picture).is_file() and Path(view.picture).stat().st_size > 1000


def test_verdicts_undo_skip_and_a_clear_end(tmp_path, clips):
    session = h.Session(tmp_path / "work")
    first = rt.clip_view(session, str(clips), "Alpha")
    after = rt.verdict(session, str(clips), "Alpha", first.path, True, first.history)
    assert (clips / "Alpha" / "Positive" / Path(first.path).name).is_file()
    assert "1 right, 0 wrong, 2 to go" in after.info and len(after.history) == 1
    assert Path(after.path).name.startswith("0.780")
    back = rt.undo(session, str(clips), "Alpha", after.history)
    assert back.path == first.path and back.history == ()  # shown again, pending again
    assert not list((clips / "Alpha" / "Positive").glob("*.wav"))
    assert "0 right, 0 wrong, 3 to go" in back.info
    skipped = rt.clip_view(session, str(clips), "Alpha", after=back.path)
    assert skipped.path != back.path and skipped.left == 3  # skipped, not lost
    view, hist = back, ()
    for ok in (True, False, False):
        view = rt.verdict(session, str(clips), "Alpha", view.path, ok, hist)
        hist = view.history
    assert view.path is None and view.left == 0
    assert view.info.startswith("All clips of Alpha reviewed: 1 right, 2 wrong")
    again = rt.verdict(session, str(clips), "Alpha", None, True, hist)  # a click at the end
    assert again.info == view.info and again.history == hist
    last = rt.undo(session, str(clips), "Alpha", hist)
    assert last.left == 1 and "1 right, 1 wrong, 1 to go" in last.info
    nothing = rt.undo(session, str(clips), "Alpha", ())
    assert nothing.info.startswith("Nothing to undo yet.")


def test_an_empty_species_folder_says_so(tmp_path):
    (tmp_path / "clips" / "Beta").mkdir(parents=True)
    view = rt.clip_view(h.Session(tmp_path / "work"), str(tmp_path / "clips"), "Beta")
    assert view.path is None and view.info == "Beta: no clips to review here."


def test_the_shortcuts_press_buttons_that_exist(tmp_path):
    from edgebird.gui.app import build_app

    app = build_app(h.Session(tmp_path / "work"))
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert set(rt.SHORTCUTS.values()) <= ids
    for key, elem in rt.SHORTCUTS.items():
        assert f'"{key}": "{elem}"' in rt.SHORTCUT_JS
