"""The Evaluate and Search tabs (issue 20's loop in the GUI): how a model does on the user's
own annotated recordings, and query by example into the training folder.

The handlers are thin calls into the library the commands use (``evaluation.evaluate_tables``
and ``report.write``; ``search.run.search`` and ``write_clips``), testable without a browser;
problems a user can fix come back as ``UserError``. The tab builders only lay out widgets.
"""

from __future__ import annotations

import csv
import io
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
        start = None if start in (None, "") or end in (None, "") else float(start)
        end = None if start is None else float(end)
        q = parse_query(str(query), start, end)
        s = SearchSettings(k=int(k), per_recording=int(per_recording) if per_recording else None)
        result = search(store, [q], s, echo=lambda m: None)
    except (ValueError, QueryError) as exc:
        raise h.UserError(str(exc)) from None
    return result.hits, result.text()


def hit_rows(hits: list[Hit]) -> list[list]:
    return [[x.rank, Path(x.file).name, round(x.start, 2), round(x.end, 2), round(x.score, 3)]
            for x in hits]


def mark_hit(hits: list[Hit], index: int | None, training: str, label: str, right: bool) -> str:
    """The selected result as a clip into ``training/LABEL/Positive/`` (right) or
    ``training/LABEL/Negative/`` (wrong): the Review tab's layout, which ``train`` reads as
    positives and hard negatives of LABEL."""
    from edgebird.search.run import training_folder, write_clips

    if index is None or not 0 <= index < len(hits):
        raise h.UserError("select a result in the table first")
    if not training or not label:
        raise h.UserError("choose the training folder and the class the results are marked for")
    try:
        folder = training_folder(label) + ("/Positive" if right else "/Negative")
        written, failed = write_clips([hits[index]], training, folder=folder)
    except ValueError as exc:
        raise h.UserError(str(exc)) from None
    if failed:
        raise h.UserError(f"{failed[0][0]}: {failed[0][1]}")
    return f"{written[0]}"


def hits_csv(hits: list[Hit]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["rank", "file", "start", "end", "score"])
    for x in hits:
        w.writerow([x.rank, x.file, f"{x.start:g}", f"{x.end:g}", f"{x.score:.4f}"])
    return buf.getvalue()


def evaluate_tab(t, session: h.Session, errors) -> None:
    with gr.Row():
        results = gr.Textbox(label=t("ev_results"))
        annotations = gr.Textbox(label=t("ev_annotations"))
        audio = gr.Textbox(label=t("ev_audio"))
    with gr.Row():
        thresholds = gr.Textbox(label=t("ev_thresholds"))
        target = gr.Slider(0.5, 0.99, default_of(EvaluateSettings, "target_precision"),
                           step=0.01, label=t("ev_target"))
    go = gr.Button(t("ev_run"), variant="primary")
    report = gr.Markdown()
    with gr.Row():
        pr = gr.Image(label=t("ev_pr"), type="filepath", interactive=False)
        thr = gr.Image(label=t("ev_thr"), type="filepath", interactive=False)
    files = gr.File(label=t("ev_files"), file_count="multiple", interactive=False)
    go.click(errors(lambda r, a, au, tp, th: run_evaluation(session, r, a, au, tp, th)),
             [results, annotations, audio, target, thresholds], [report, pr, thr, files])


def search_tab(t, errors) -> None:
    d = SearchSettings()
    with gr.Row():
        store = gr.Textbox(label=t("se_store"))
        query = gr.Audio(label=t("se_query"), type="filepath")
    with gr.Row():
        start = gr.Number(None, label=t("se_start"))
        end = gr.Number(None, label=t("se_end"))
        k = gr.Number(d.k, precision=0, minimum=1, label=t("se_k"))
        per = gr.Number(2, precision=0, minimum=1, label=t("se_per"))
    go = gr.Button(t("se_run"), variant="primary")
    summary = gr.Textbox(label=t("summary"), interactive=False)
    hits = gr.State([])
    selected = gr.State(None)
    table = gr.Dataframe(headers=HIT_COLUMNS, interactive=False, label=t("se_hits"))
    player = gr.Audio(label=t("se_clip"), interactive=False, autoplay=True)
    with gr.Row():
        training = gr.Textbox(label=t("se_training"))
        label = gr.Textbox(label=t("se_label"))
    with gr.Row():
        right = gr.Button(t("right"), variant="primary")
        wrong = gr.Button(t("wrong"), variant="stop")
    marked = gr.Textbox(label=t("se_marked"), interactive=False)

    def run(s, q, a, b, kk, pp):
        found, text = run_search(s, q, a, b, kk, pp)
        return found, hit_rows(found), text, None, None

    def pick(found, evt: gr.SelectData):
        i = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        x = found[i]
        return i, h.clip_audio(x.file, x.start, x.end)

    go.click(errors(run), [store, query, start, end, k, per],
             [hits, table, summary, selected, player])
    table.select(errors(pick), hits, [selected, player])
    right.click(errors(lambda f, i, tr, lb: mark_hit(f, i, tr, lb, True)),
                [hits, selected, training, label], marked)
    wrong.click(errors(lambda f, i, tr, lb: mark_hit(f, i, tr, lb, False)),
                [hits, selected, training, label], marked)
