"""The Evaluate and Search tabs (issue 20's loop in the GUI): how a model does on the user's
own annotated recordings, and query by example into the training folder.

The handlers are thin calls into the library the commands use (``evaluation.evaluate_tables``
and ``report.write``; ``search.run.search`` and ``write_clips``), testable without a browser;
problems a user can fix come back as ``UserError``. The tab builders only lay out widgets.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from edgebird.evaluation.evaluate import EvaluateSettings
from edgebird.options import default_of
from edgebird.search.run import Hit, SearchSettings

from . import handlers as h

HIT_COLUMNS = ["Rank", "File", "Start (s)", "End (s)", "Score"]


def run_evaluation(session: h.Session, results: str, annotations: str, audio: str | None,
                   target_precision: float, thresholds: str | None = None):
    """``edgebird evaluate RESULTS -a ANNOTATIONS [--audio AUDIO]``: the report's text, the
    two plots and the files to download (written into a fresh session folder)."""
    from edgebird.evaluation import report
    from edgebird.evaluation.evaluate import EvaluationError, evaluate_tables

    if not results or not annotations:
        raise h.UserError("choose the result tables (a folder or file) and the annotations")
    for name, path in (("results", results), ("annotations", annotations),
                       ("audio folder", audio), ("thresholds file", thresholds)):
        if path and not Path(path).exists():
            raise h.UserError(f"the {name} {path} does not exist")
    out = session.folder("evaluation")
    written = out / "thresholds_for_target_precision.csv"
    try:
        s = EvaluateSettings(target_precision=float(target_precision),
                             thresholds=thresholds or None, write_thresholds=str(written))
        ev = evaluate_tables([results], [annotations], s, audio=audio or None)
        report.write(ev, out)
    except (ValueError, EvaluationError) as exc:
        raise h.UserError(str(exc)) from None
    files = [str(p) for p in (out / "EVALUATION.md", out / "evaluation.csv", written)
             if p.is_file()]
    plots = [str(out / n) if (out / n).is_file() else None
             for n in ("pr_curve.png", "threshold_curve.png")]
    text = (out / "EVALUATION.md").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("!["))
    return text, plots[0], plots[1], files


def run_search(store: str, query: str | None, start: float | None, end: float | None, k: int,
               per_recording: int | None) -> tuple[list[Hit], str]:
    """``edgebird search STORE QUERY[:START-END] -k K --per-recording N``."""
    from edgebird.search.query import QueryError, parse_query
    from edgebird.search.run import search

    if not store or not query:
        raise h.UserError("choose an embedding store (made by 'edgebird embed') and a query clip")
    if not Path(store).is_dir():
        raise h.UserError(f"the store {store} is not a folder")
    try:
        start, end = query_range(start, end)
        q = parse_query(str(query), start, end)
        s = SearchSettings(k=int(k), per_recording=int(per_recording) if per_recording else None)
        result = search(store, [q], s, echo=lambda m: None)
    except (ValueError, QueryError) as exc:
        raise h.UserError(str(exc)) from None
    return result.hits, result.text()


def query_range(start, end) -> tuple[float | None, float | None]:
    """The query's time range from the two boxes: none (the whole clip) while "To" is empty
    or 0, which is what an untouched number box holds."""
    if end in (None, "") or float(end) == 0:
        return None, None
    return float(start or 0), float(end)


def hit_rows(hits: list[Hit]) -> list[list]:
    return [[x.rank, Path(x.file).name, round(x.start, 2), round(x.end, 2), round(x.score, 3)]
            for x in hits]


#: Results shown as cards (spectrogram, player, Right / Wrong); the table lists all of them.
#: Bounded so a search with a large ``k`` still answers in about a second.
MAX_CARDS = 12
#: Seconds of audio either side of a result's window in its card (the Single file tab's 1 s).
CARD_CONTEXT = 1.0


@dataclass(frozen=True)
class Card:
    """What one result card shows: its title line, and the picture and clip written for it
    into the session folder (made once per search)."""

    title: str
    picture: str
    clip: str


def hit_title(x: Hit) -> str:
    return (f"**#{x.rank}** {Path(x.file).name} · {x.start:.1f}-{x.end:.1f} s · "
            f"similarity {x.score:.3f}")


def result_cards(session: h.Session, hits: list[Hit], n: int = MAX_CARDS) -> list[Card]:
    """The first ``n`` results as cards: each window with ``CARD_CONTEXT`` around it, as a
    WAV to play and a spectrogram with the window marked, in a fresh session folder. A
    recording that can no longer be read (moved since ``embed``) gets a card saying so."""
    import soundfile as sf

    from edgebird.audio import AudioError

    out = session.folder("search")
    cards = []
    for i, x in enumerate(hits[:n]):
        try:
            rate, samples = h.clip_audio(x.file, x.start, x.end, CARD_CONTEXT)
        except (AudioError, OSError) as exc:
            cards.append(Card(f"{hit_title(x)}  \n*cannot read the recording: {exc}*", "", ""))
            continue
        clip, picture = out / f"result_{i + 1:02d}.wav", out / f"result_{i + 1:02d}.png"
        sf.write(clip, samples, rate, subtype="PCM_16")
        window_picture(samples, rate, max(0.0, x.start - CARD_CONTEXT), x.start, x.end,
                       picture)
        cards.append(Card(hit_title(x), str(picture), str(clip)))
    return cards


def window_picture(samples, rate: int, offset: float, start: float, end: float,
                   dest: Path, xlabel: str = "s in the recording") -> Path:
    """A small spectrogram PNG (time in the recording's seconds, kHz) with the result's
    window between two dashed lines. Matplotlib's object API, not pyplot: Gradio runs
    handlers in threads, and pyplot's global figure state is not thread-safe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from edgebird.audio import DEFAULT_FMAX

    fig = Figure(figsize=(3.4, 1.9), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if len(samples) > 512:
        ax.specgram(samples, NFFT=512, Fs=rate, noverlap=256, cmap="magma", vmin=-130,
                    xextent=(offset, offset + len(samples) / rate))
    for t in (start, end):
        ax.axvline(t, color="cyan", linestyle="--", linewidth=1.0)
    ax.set_ylim(0, DEFAULT_FMAX)
    ax.set_yticks([0, 5000, 10000, 15000], ["0", "5", "10", "15"])
    ax.set_ylabel("kHz", fontsize=8)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout(pad=0.3)
    fig.savefig(dest)
    return dest


def mark_hit(hits: list[Hit], index: int | None, training: str, label: str, right: bool,
             previous: str | None = None) -> str:
    """The result as a clip into ``training/LABEL/Positive/`` (right) or
    ``training/LABEL/Negative/`` (wrong): the Review tab's layout, which ``train`` reads as
    positives and hard negatives of LABEL. ``previous``, the clip an earlier verdict on the
    same result wrote, is removed when it lies elsewhere: changing one's mind moves the clip
    (as the Review tab does) instead of leaving it in both folders."""
    from edgebird.search.run import training_folder, write_clips

    if index is None or not 0 <= index < len(hits):
        raise h.UserError("select a result in the table first")
    if not training or not label:
        raise h.UserError("choose the training folder and the class the results are marked for"
                          " (above the results)")
    try:
        folder = training_folder(label) + ("/Positive" if right else "/Negative")
        written, failed = write_clips([hits[index]], training, folder=folder)
    except ValueError as exc:
        raise h.UserError(str(exc)) from None
    if failed:
        raise h.UserError(f"{failed[0][0]}: {failed[0][1]}")
    if previous and Path(previous) != written[0]:
        Path(previous).unlink(missing_ok=True)
    return f"{written[0]}"


def mark_words(path: str, training: str, right: bool) -> str:
    """A card's line after marking: the verdict and where the clip went."""
    try:
        where = Path(path).relative_to(training)
    except ValueError:
        where = Path(path)
    return f"{'marked right' if right else 'marked wrong'}: {where}"


def hits_csv(hits: list[Hit]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "file", "start", "end", "score"])
    for x in hits:
        w.writerow([x.rank, x.file, f"{x.start:g}", f"{x.end:g}", f"{x.score:.4f}"])
    return buf.getvalue()


def evaluate_tab(t, session: h.Session, errors) -> None:
    with gr.Row():
        results = gr.Textbox(label=t("ev_results"), elem_id="ev-results")
        annotations = gr.Textbox(label=t("ev_annotations"), elem_id="ev-annotations")
        audio = gr.Textbox(label=t("ev_audio"))
    with gr.Row():
        thresholds = gr.Textbox(label=t("ev_thresholds"))
        target = gr.Slider(0.5, 0.99, default_of(EvaluateSettings, "target_precision"),
                           step=0.01, label=t("ev_target"))
    go = gr.Button(t("ev_run"), variant="primary", elem_id="ev-run")
    report = gr.Markdown(elem_id="ev-report")
    with gr.Row():
        pr = gr.Image(label=t("ev_pr"), type="filepath", interactive=False, elem_id="ev-pr")
        thr = gr.Image(label=t("ev_thr"), type="filepath", interactive=False)
    files = gr.File(label=t("ev_files"), file_count="multiple", interactive=False)
    go.click(errors(lambda r, a, au, tp, th: run_evaluation(session, r, a, au, tp, th)),
             [results, annotations, audio, target, thresholds], [report, pr, thr, files])


def search_tab(t, session: h.Session, errors) -> None:
    d = SearchSettings()
    with gr.Row():
        store = gr.Textbox(label=t("se_store"), elem_id="search-store")
        query = gr.Audio(label=t("se_query"), type="filepath", elem_id="search-query")
    with gr.Row():
        start = gr.Number(None, label=t("se_start"))
        end = gr.Number(None, label=t("se_end"))
        k = gr.Number(d.k, precision=0, minimum=1, label=t("se_k"))
        per = gr.Number(2, precision=0, minimum=1, label=t("se_per"))
    with gr.Row():
        training = gr.Textbox(label=t("se_training"), elem_id="search-training")
        label = gr.Textbox(label=t("se_label"), elem_id="search-label")
    go = gr.Button(t("se_run"), variant="primary", elem_id="search-run")
    summary = gr.Textbox(label=t("summary"), interactive=False, elem_id="search-summary")
    hits = gr.State([])
    marks = gr.State({})  # result index -> the clip its verdict wrote
    cards = []
    for row in range(MAX_CARDS // 4):
        with gr.Row():
            for col in range(4):
                i = row * 4 + col
                with gr.Column(visible=False, min_width=240,
                               elem_classes=["search-card"]) as box:
                    title = gr.Markdown()
                    picture = gr.Image(type="filepath", interactive=False, show_label=False,
                                       buttons=["fullscreen"],
                                       elem_classes=["search-spectrogram"])
                    clip = gr.Audio(type="filepath", interactive=False, show_label=False,
                                    buttons=["download"], elem_classes=["search-clip"])
                    with gr.Row():
                        yes = gr.Button(t("right"), variant="primary", size="sm",
                                        min_width=60, elem_id=f"search-right-{i}")
                        no = gr.Button(t("wrong"), variant="stop", size="sm", min_width=60,
                                       elem_id=f"search-wrong-{i}")
                    status = gr.Markdown(elem_id=f"search-status-{i}")
                cards.append((box, title, picture, clip, status))
                for button, ok in ((yes, True), (no, False)):
                    button.click(errors(lambda f, m, tr, lb, i=i, ok=ok: _mark(f, m, i, tr, lb,
                                                                               ok)),
                                 [hits, marks, training, label], [marks, status])
    with gr.Accordion(t("se_all"), open=False):
        table = gr.Dataframe(headers=HIT_COLUMNS, interactive=False, label=t("se_hits"))
        selected = gr.State(None)
        player = gr.Audio(label=t("se_clip"), interactive=False, autoplay=True)
        with gr.Row():
            right = gr.Button(t("se_right_row"), variant="primary")
            wrong = gr.Button(t("se_wrong_row"), variant="stop")
        marked = gr.Textbox(label=t("se_marked"), interactive=False)

    card_outputs = [c for card in cards for c in card]

    def run(s, q, a, b, kk, pp):
        found, text = run_search(s, q, a, b, kk, pp)
        text = text.replace(str(q), Path(q).name)  # an upload's temporary path says nothing
        made = result_cards(session, found)
        if len(found) > len(made):
            text += f"\nthe first {len(made)} are shown with their spectrogram; all " \
                    f"{len(found)} are in the table below"
        shown = []
        for i in range(len(cards)):
            c = made[i] if i < len(made) else None
            shown += [gr.Column(visible=c is not None), c.title if c else "",
                      (c.picture or None) if c else None, (c.clip or None) if c else None, ""]
        return [found, {}, hit_rows(found), text, None, None, *shown]

    def pick(found, evt: gr.SelectData):
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        x = found[i]
        return i, h.clip_audio(x.file, x.start, x.end)

    go.click(errors(run), [store, query, start, end, k, per],
             [hits, marks, table, summary, selected, player, *card_outputs])
    table.select(errors(pick), hits, [selected, player])
    for button, ok in ((right, True), (wrong, False)):
        button.click(errors(lambda f, m, i, tr, lb, ok=ok: _mark(f, m, i, tr, lb, ok)),
                     [hits, marks, selected, training, label], [marks, marked])


def _mark(found: list[Hit], marks: dict, index: int | None, training: str, label: str,
          right: bool) -> tuple[dict, str]:
    """One verdict from a card or the table: the clip written (an earlier verdict's clip on
    the same result moved), and the words that say where it went."""
    path = mark_hit(found, index, training, label, right, (marks or {}).get(index))
    return {**(marks or {}), index: path}, mark_words(path, training, right)
