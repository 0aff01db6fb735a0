"""The Review tab: listen to the clips ``segments`` cut, most confident first, and say right or
wrong; each verdict moves the clip into ``Species/Positive/`` or ``Species/Negative/`` (the
folders ``edgebird train`` reads), and the calibration follows every verdict.

What a reviewer needs on screen, and why (issue 18.6): the clip's spectrogram (most calls are
recognised by eye faster than by ear), its file and score, how many are done and left, Undo
(a slip of the finger is common at one clip a second), keyboard shortcuts (R right, W wrong,
S skip, U undo: the hands stay on the keys), autoplay, and a clear end instead of buttons
that silently do nothing. The functions here are plain so the tests call them directly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from edgebird.gui import handlers as h

#: Keys -> the buttons they press (elem ids); ignored while typing in a text box.
SHORTCUTS = {"r": "review-right", "w": "review-wrong", "s": "review-skip", "u": "review-undo"}

SHORTCUT_JS = """
<script>
document.addEventListener('keydown', (e) => {
  const tag = (e.target.tagName || '').toLowerCase();
  if (tag === 'input' || tag === 'textarea' || e.ctrlKey || e.metaKey || e.altKey) return;
  const ids = IDS;
  const id = ids[e.key.toLowerCase()];
  const button = id && document.getElementById(id);
  if (button && button.offsetParent !== null) { e.preventDefault(); button.click(); }
});
</script>
""".replace("IDS", json.dumps(SHORTCUTS))


@dataclass(frozen=True)
class ClipView:
    """What the tab shows for one clip (``path`` None: nothing left to review)."""

    path: str | None
    audio: tuple | None
    picture: str | None
    info: str
    left: int
    history: tuple = field(default=())


def counts(folder: str, species: str) -> tuple[int, int, int]:
    """(right, wrong, left) for a species folder."""
    from edgebird.training.review import pending, reviewed

    base = Path(folder) / species
    _, correct = reviewed(base)
    right = int(sum(correct))
    return right, len(correct) - right, len(pending(base))


def _info(path: Path | None, species: str, done: tuple[int, int, int]) -> str:
    from edgebird.training.review import clip_confidence

    right, wrong, left = done
    tally = f"{right} right, {wrong} wrong, {left} to go"
    if path is None:
        if not right and not wrong:
            return f"{species}: no clips to review here."
        return (f"All clips of {species} reviewed: {right} right, {wrong} wrong. Next: "
                "'Use calibrated thresholds' or 'Retrain' below, or choose another species "
                "(Undo still takes back the last verdict).")
    return f"{path.name}  ·  score {clip_confidence(path):.3f}  ·  {tally}"


def clip_view(session: h.Session, folder: str, species: str, after: str | None = None,
              history: tuple = ()) -> ClipView:
    """The next pending clip of ``species`` (the one after ``after`` when skipping), with its
    audio, a spectrogram picture in the session folder, and the line of counts."""
    from edgebird.gui.loop import window_picture

    from edgebird.training.review import pending

    if not folder or not species:
        return ClipView(None, None, None, "", 0, history)
    clips = pending(Path(folder) / species)
    if after and len(clips) > 1 and str(clips[0]) == after:
        clips = clips[1:] + clips[:1]  # skipping puts it last, it is not lost
    done = counts(folder, species)
    if not clips:
        return ClipView(None, None, None, _info(None, species, done), 0, history)
    path = clips[0]
    rate, samples = h._read(path)
    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    picture = session.folder("review") / f"{path.stem}.png"
    window_picture(mono, rate, 0.0, 0.0, len(mono) / rate, picture, xlabel="s in the clip")
    return ClipView(str(path), (rate, samples), str(picture), _info(path, species, done),
                    done[2], history)


def verdict(session: h.Session, folder: str, species: str, path: str | None, right: bool,
            history: tuple = ()) -> ClipView:
    """Mark ``path`` right or wrong and show the next clip; the move is remembered for Undo.
    With no clip shown (the end), nothing is marked and the end is shown again."""
    from edgebird.training.review import mark

    if path and Path(path).is_file():
        moved = mark(path, right)
        history = (*history, str(moved))
    return clip_view(session, folder, species, history=history)


def undo(session: h.Session, folder: str, species: str, history: tuple) -> ClipView:
    """Put the last marked clip back among the pending ones and show it again."""
    from edgebird.training.review import unmark

    if not history:
        view = clip_view(session, folder, species)
        return ClipView(view.path, view.audio, view.picture,
                        "Nothing to undo yet. " + view.info, view.left)
    *rest, last = history
    if Path(last).is_file():
        unmark(last)
    return clip_view(session, folder, species, history=tuple(rest))


def review_tab(t, session: h.Session, settings, errors, setting) -> tuple:
    """Build the tab; returns the folder box and the Retrain button (wired by the app)."""
    with gr.Row():
        folder = gr.Textbox(label=t("review_dir"), elem_id="review-folder")
        load = gr.Button(t("load"), size="sm")
    species = gr.Dropdown([], label=t("species"), interactive=True, elem_id="review-species")
    current = gr.State(None)
    history = gr.State(())
    info = gr.Textbox(label=t("review_clip_info"), interactive=False, elem_id="review-info")
    with gr.Row():
        picture = gr.Image(label=t("clip_spectrogram"), type="filepath", interactive=False,
                           elem_id="review-spectrogram", scale=2)
        with gr.Column(scale=1):
            player = gr.Audio(label=t("clip"), interactive=False, autoplay=True)
            left = gr.Number(label=t("remaining"), interactive=False)
    with gr.Row():
        right = gr.Button(t("right"), variant="primary", elem_id="review-right")
        wrong = gr.Button(t("wrong"), variant="stop", elem_id="review-wrong")
        skip = gr.Button(t("skip"), elem_id="review-skip")
        back = gr.Button(t("undo"), elem_id="review-undo")
    gr.Markdown(t("review_keys"))
    precision = gr.Slider(0.5, 0.99, 0.9, step=0.01, label=t("precision"))
    verdict_text = gr.Textbox(label=t("calibration"), interactive=False)
    curve = gr.Plot(label=t("calibration_plot"))
    with gr.Row():
        use_cal = gr.Button(t("use_calibrated"), variant="secondary", elem_id="use-calibrated")
        retrain = gr.Button(t("retrain"), variant="secondary", elem_id="retrain")
    cal_written = gr.Textbox(label=t("calibrated_written"), interactive=False,
                             elem_id="calibrated-written")
    shown = [player, current, left, info, picture, history]

    def out(view: ClipView) -> tuple:
        return view.audio, view.path, view.left, view.info, view.picture, view.history

    def with_calibration(view: ClipView, f, sp, p) -> tuple:
        text, fig = h.calibration_view(f, sp, p) if sp else ("", None)
        return (*out(view), text, fig)

    def choose(f):
        names = h.review_species(f)
        return gr.Dropdown(choices=names, value=names[0])

    load.click(errors(choose), folder, species)
    species.change(errors(lambda f, sp: out(clip_view(session, f, sp))), [folder, species],
                   shown)
    for button, ok in ((right, True), (wrong, False)):
        button.click(errors(lambda f, sp, c, hist, p, ok=ok: with_calibration(
            verdict(session, f, sp, c, ok, hist), f, sp, p)),
            [folder, species, current, history, precision], [*shown, verdict_text, curve])
    skip.click(errors(lambda f, sp, c, hist: out(clip_view(session, f, sp, c, hist))),
               [folder, species, current, history], shown)
    back.click(errors(lambda f, sp, hist, p: with_calibration(undo(session, f, sp, hist),
                                                              f, sp, p)),
               [folder, species, history, precision], [*shown, verdict_text, curve])
    precision.change(errors(h.calibration_view), [folder, species, precision],
                     [verdict_text, curve])
    model_mode, classifier = setting(settings, "model_mode"), setting(settings, "classifier")
    use_cal.click(errors(lambda f, p, m, c: h.use_calibrated_thresholds(session, f, p, m, c)),
                  [folder, precision, model_mode, classifier], cal_written)
    return folder, retrain
