"""The Gradio app: layout and wiring only (what each button does is in ``handlers``).

Started by ``edgebird gui``. Binds 127.0.0.1 and makes no public link unless asked; serves only
the files it wrote into its session folder (copies of tables, pictures, trained models), and
refuses uploads and other writes from other web sites (``origin``).
Importing this module does not import TensorFlow (training runs in a child process).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from edgebird.audio import CROP_MODES, DEFAULT_FMAX, TRAINING_CROP_MODE
from edgebird.core.scores import SENSITIVITY_RANGE
from edgebird.core.writers.formats import FORMATS
from edgebird.heads import exportable_heads
from edgebird.pipeline.analyze import AnalyzeSettings
from edgebird.pipeline.engine import EngineSettings
from edgebird.pipeline.segments import COLLECTION_MODES, SegmentSettings
from edgebird.training.classifier import DEFAULT_MODEL_NAME, SAVE_MODES
from edgebird.training.train import UPSAMPLING_MODES, TrainSettings

from . import handlers as h
from . import loop, review_tab, species_tab
from .origin import SameOriginWrites
from .texts import i18n

#: The result-type boxes: every format of the one format table, by its title.
RTYPE_CHOICES = [(f.title, f.name) for f in FORMATS.values()]


def _errors(fn):
    """Run a handler; a UserError becomes a readable error popup, not a traceback."""
    import functools
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except h.UserError as exc:
                raise gr.Error(str(exc)) from None
        return gen

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except h.UserError as exc:
            raise gr.Error(str(exc)) from None
    return call


def _settings_block(t):
    """The shared settings; returns the components in ``DetectionSettings`` order."""
    d = h.DetectionSettings()  # the library's defaults
    # the model in view, above the tabs (Single file and Batch use it; Train can set it)
    with gr.Row(elem_id="model-picker"):
        model_mode = gr.Radio([(t("model_birdnet"), "birdnet"), (t("model_custom"), "custom")],
                              value=d.model_mode, label=t("model_mode"))
        classifier = gr.Textbox(label=t("classifier"), placeholder="/path/to/Model.tflite",
                                visible=d.model_mode == "custom")
        model_status = gr.Textbox(h.check_model(d.model_mode, None), label=t("model_status"),
                                  interactive=False)
    with gr.Accordion(t("settings"), open=False):
        with gr.Row():
            min_conf = gr.Slider(0.01, 0.99, d.min_conf, step=0.01, label=t("min_conf"))
            class_thresholds = gr.Checkbox(d.class_thresholds, label=t("class_thresholds"))
            sensitivity = gr.Slider(*SENSITIVITY_RANGE, d.sensitivity, step=0.01,
                                    label=t("sensitivity"))
            overlap = gr.Slider(0.0, 2.9, d.overlap, step=0.1, label=t("overlap"))
        with gr.Row():
            use_top_n = gr.Checkbox(d.use_top_n, label=t("use_top_n"))
            top_n = gr.Number(d.top_n, precision=0, minimum=1, label=t("top_n"))
            merge = gr.Number(d.merge, precision=0, minimum=1, maximum=20, label=t("merge"))
            fmin = gr.Number(d.fmin, minimum=0, maximum=DEFAULT_FMAX, label=t("fmin"))
            fmax = gr.Number(d.fmax, minimum=0, maximum=DEFAULT_FMAX, label=t("fmax"))
        with gr.Row():
            species_mode = gr.Radio([(t("species_all"), "all"), (t("species_list"), "list"),
                                     (t("species_location"), "location")],
                                    value=d.species_mode, label=t("species_mode"))
            species_file = gr.Textbox(label=t("species_file"), placeholder="/path/to/list.txt")
        with gr.Row():
            lat = gr.Number(d.lat, minimum=-90, maximum=90, label=t("lat"))
            lon = gr.Number(d.lon, minimum=-180, maximum=180, label=t("lon"))
            week = gr.Number(d.week, precision=0, minimum=-1, maximum=48, label=t("week"))
            sf_thresh = gr.Slider(0.01, 0.99, d.sf_thresh, step=0.01, label=t("sf_thresh"))
        show = gr.Button(t("show_species"), size="sm")
        species_shown = gr.Textbox(label=t("species_shown"), lines=4, max_lines=12)
    comps = [min_conf, sensitivity, overlap, use_top_n, top_n, merge, fmin, fmax, species_mode,
             species_file, lat, lon, week, sf_thresh, model_mode, classifier, class_thresholds]
    for c in (model_mode, classifier):
        c.change(h.check_model, [model_mode, classifier], model_status)
    model_mode.change(lambda m: gr.Textbox(visible=m == "custom"), model_mode, classifier)
    show.click(_errors(lambda *v: h.species_preview(h.DetectionSettings(*v))), comps,
               species_shown)
    return comps


def build_app(session: h.Session) -> gr.Blocks:
    t = i18n()
    with gr.Blocks(title="edgebird") as app:
        gr.Markdown(t("title"), elem_id="title")
        gr.Markdown(t("intro"))
        settings = _settings_block(t)
        with gr.Tabs() as tabs:
            with gr.Tab(t("tab_single"), id="single"):
                _single_tab(t, session, settings)
            with gr.Tab(t("tab_batch"), id="batch"):
                _batch_tab(t, session, settings)
            with gr.Tab(t("tab_train"), id="train"):
                train_data, train_found = _train_tab(t, session, settings)
            with gr.Tab(t("tab_segments"), id="segments"):
                _segments_tab(t)
            with gr.Tab(t("tab_review"), id="review"):
                review_folder, retrain = review_tab.review_tab(t, session, settings, _errors,
                                                               _setting)
            with gr.Tab(t("tab_evaluate"), id="evaluate"):
                loop.evaluate_tab(t, session, _errors)
            with gr.Tab(t("tab_search"), id="search"):
                loop.search_tab(t, session, _errors)
            with gr.Tab(t("tab_species"), id="species"):
                species_tab.species_tab(t, app, _errors)
            with gr.Tab(t("tab_settings"), id="settings"):
                species_tab.settings_tab(t, app, _errors)
        # Review -> Retrain: the reviewed folder (Species/Positive/, Species/Negative/) becomes
        # the training data, checked, on the Train tab, ready to start.
        retrain.click(_errors(lambda f: (f, h.retrain_words(f, h.scan_training_folder(f)),
                                         gr.Tabs(selected="train"))),
                      review_folder, [train_data, train_found, tabs])
    app.i18n_obj = t.i18n
    return app


def _single_tab(t, session, settings) -> None:
    audio = gr.Audio(type="filepath", label=t("audio_in"), sources=["upload"])
    go = gr.Button(t("analyze"), variant="primary", elem_id="analyze-single")
    status = gr.Textbox(label=t("status"), interactive=False, elem_id="single-status")
    plot = gr.Plot(label=t("spectrogram"))
    table = gr.Dataframe(headers=h.TABLE_COLUMNS, label=t("results"), interactive=False,
                         elem_id="single-table")
    player = gr.Audio(label=t("play"), interactive=False)
    files = gr.File(label=t("downloads"), file_count="multiple")

    def analyze(request: gr.Request, path, *values):
        lang = species_tab.page_language(request)
        r = h.analyze_single(session, path, h.DetectionSettings(*values), lang)
        # the player is emptied: it would still hold a clip of the previous file
        return r.status, r.figure, r.rows, [str(p) for p in r.tables], None

    go.click(_errors(analyze), [audio, *settings], [status, plot, table, files, player])
    audio.change(lambda _: None, audio, player)  # a new file: no clip of the old one

    def play(path, rows, evt: gr.SelectData):
        if not path or rows is None or evt.index is None:
            return None
        row = evt.index[0]
        data = rows.values.tolist() if hasattr(rows, "values") else rows
        start, end = float(data[row][0]), float(data[row][1])
        return h.clip_audio(path, start, end)

    table.select(_errors(play), [audio, table], player)


def _batch_tab(t, session, settings) -> None:
    a, e = AnalyzeSettings(), EngineSettings()
    with gr.Row():
        input_dir = gr.Textbox(label=t("input_dir"))
        output_dir = gr.Textbox(label=t("output_dir"))
    with gr.Row():
        rtypes = gr.CheckboxGroup(RTYPE_CHOICES, value=list(a.rtypes), label=t("rtypes"))
        combine = gr.Checkbox(a.combine, label=t("combine"))
        skip = gr.Checkbox(a.skip_existing, label=t("skip_existing"))
        workers = gr.Number(e.workers, precision=0, minimum=0, maximum=64, label=t("workers"))
    with gr.Row():
        start = gr.Button(t("start"), variant="primary")
        cancel = gr.Button(t("cancel"), variant="stop")
    files = gr.Dataframe(headers=["file", "status", "detail"], label=t("file_status"),
                         interactive=False)
    summary = gr.Textbox(label=t("summary"), lines=8, interactive=False)

    def run(inp, out, types, comb, sk, w, *values, progress=gr.Progress()):
        for state in h.run_batch(session, inp, out, types, comb, sk, w,
                                 h.DetectionSettings(*values)):
            if state.files:
                progress((state.finished(), len(state.files)), desc="files", unit="files")
            rows = [[rel, st, detail] for rel, (st, detail) in sorted(state.files.items())]
            yield rows, state.text()

    event = start.click(_errors(run), [input_dir, output_dir, rtypes, combine, skip, workers,
                                       *settings], [files, summary])
    cancel.click(lambda: session.cancel.set(), None, None, cancels=[event])


def _train_tab(t, session, settings) -> tuple[gr.Textbox, gr.Textbox]:
    d = TrainSettings()
    with gr.Row():
        data = gr.Textbox(label=t("data_dir"))
        scan = gr.Button(t("scan"), size="sm")
    found = gr.Textbox(label=t("classes_found"), lines=5, interactive=False)
    with gr.Row():
        out = gr.Textbox(label=t("train_out"))
        name = gr.Textbox(DEFAULT_MODEL_NAME, label=t("model_name"))
    with gr.Row():
        test_data = gr.Textbox(label=t("test_data"))
        group_pattern = gr.Textbox(label=t("group_pattern"), placeholder="^(XC\\d+)")
        seed = gr.Number(d.seed, precision=0, label=t("seed"))
    with gr.Row():
        background = gr.Textbox(d.background, label=t("background_dir"))
        head = gr.Dropdown(exportable_heads(), value=d.head, label=t("head"),
                           info=t("head_info"))
        folds = gr.Number(d.folds, precision=0, minimum=0, maximum=20, label=t("folds"))
        autotune = gr.Number(d.autotune, precision=0, minimum=0, maximum=500,
                             label=t("autotune"), info=t("autotune_info"))
    # The Keras head's options: only --head dense uses them, so they stay folded away.
    with gr.Accordion(t("keras_options"), open=False):
        with gr.Row():
            epochs = gr.Number(d.epochs, precision=0, minimum=1, label=t("epochs"))
            batch_size = gr.Number(d.batch_size, precision=0, minimum=1, label=t("batch_size"))
            lr = gr.Number(d.learning_rate, minimum=1e-6, label=t("learning_rate"))
            hidden = gr.Number(d.hidden_units, precision=0, minimum=0, label=t("hidden_units"))
            dropout = gr.Slider(0.0, 0.9, d.dropout, step=0.05, label=t("dropout"))
        with gr.Row():
            smoothing = gr.Slider(0.0, 0.4, d.label_smoothing, step=0.05,
                                  label=t("label_smoothing"))
            mixup = gr.Checkbox(d.mixup, label=t("mixup"))
            focal = gr.Checkbox(d.loss == "focal", label=t("focal"))
            gamma = gr.Slider(0.5, 5.0, d.focal_gamma, step=0.1, label=t("focal_gamma"))
            alpha = gr.Slider(0.1, 0.9, d.focal_alpha, step=0.05, label=t("focal_alpha"))
        with gr.Row():
            up_mode = gr.Dropdown(list(UPSAMPLING_MODES), value=d.upsampling_mode,
                                  label=t("upsampling_mode"))
            up_ratio = gr.Slider(0.0, 1.0, d.upsampling_ratio, step=0.05,
                                 label=t("upsampling_ratio"))
    with gr.Row():
        negatives = gr.Number(d.synthetic_negatives, precision=0, minimum=0,
                              label=t("synthetic_negatives"))
        holdout = gr.Number(d.holdout_species, precision=0, minimum=0,
                            label=t("holdout_species"))
        crop = gr.Dropdown(sorted(CROP_MODES, key=lambda m: m != TRAINING_CROP_MODE),  # it first
                           value=TRAINING_CROP_MODE, label=t("crop_mode"))
        save_mode = gr.Dropdown(list(SAVE_MODES), value=SAVE_MODES[0], label=t("save_mode"))
    with gr.Row():
        go = gr.Button(t("train"), variant="primary")
        cancel = gr.Button(t("cancel"), variant="stop")
    log = gr.Textbox(label=t("log"), lines=8, max_lines=20, interactive=False)
    with gr.Row():
        done = gr.Textbox(label=t("train_done"), interactive=False, elem_id="train-done",
                          scale=4)
        use = gr.Button(t("use_model"), variant="primary", visible=False, scale=1,
                        elem_id="use-model")
    trained = gr.State(None)
    metrics = gr.Dataframe(headers=["class", "precision", "recall", "F1", "AUPRC", "AUROC",
                                    "windows"], label=t("metrics"), interactive=False)
    with gr.Row():
        curves = gr.Image(label=t("curves"), type="filepath")
        confusion = gr.Image(label=t("confusion"), type="filepath")
    with gr.Row():
        model_files = gr.File(label=t("files_model"), file_count="multiple")
        report_files = gr.File(label=t("files_report"), file_count="multiple")
    with gr.Accordion(t("files_advanced"), open=False):
        advanced_files = gr.File(label=t("files_advanced"), file_count="multiple")

    scan.click(_errors(h.scan_training_folder), data, found)

    def train(d, o, n, td, gp, sd, bg, hd, k, at, ep, bs, rate, hu, do, ls, mx, fl, g, a, um,
              ur, neg, ho, cm, sm, progress=gr.Progress()):
        kwargs = dict(background=(bg or "").strip(), head=hd, folds=int(k),
                      autotune=int(at or 0), epochs=int(ep),
                      batch_size=int(bs), learning_rate=float(rate),
                      hidden_units=int(hu), dropout=float(do), label_smoothing=float(ls),
                      mixup=bool(mx), loss="focal" if fl else "bce", focal_gamma=float(g),
                      focal_alpha=float(a), upsampling_mode=um, upsampling_ratio=float(ur),
                      synthetic_negatives=int(neg), holdout_species=int(ho), seed=int(sd))
        state = None
        no_button = gr.Button(visible=False)
        for state in h.run_training(session, d, o, n, kwargs, cm, sm, test_data=td or None,
                                    group_pattern=gp or None):
            step, steps, words = state.progress(int(k))
            progress((step, steps), desc=words, unit="steps")
            yield ("\n".join(state.log[-30:]), words, no_button, None, None, None, None, None,
                   None, None)
        if state is None or state.error or not state.files:
            raise h.UserError(state.error if state else "training did not start")
        r = h.training_outputs(session, o, state.files, state.seconds())
        yield ("\n".join(state.log[-30:]), r.done_line(), gr.Button(visible=True),
               str(r.model), r.rows, *(str(p) if p else None for p in r.pictures),
               *([str(f) for f in group] for group in (r.model_files, r.report_files,
                                                         r.advanced_files)))

    event = go.click(_errors(train), [data, out, name, test_data, group_pattern, seed,
                                      background, head, folds, autotune,
                                      epochs, batch_size, lr, hidden,
                                      dropout, smoothing, mixup, focal, gamma, alpha, up_mode,
                                      up_ratio, negatives, holdout, crop, save_mode],
                     [log, done, use, trained, metrics, curves, confusion, model_files,
                      report_files, advanced_files])
    cancel.click(lambda: session.cancel.set(), None, None, cancels=[event])
    model_mode, classifier = _setting(settings, "model_mode"), _setting(settings, "classifier")
    use.click(_errors(h.use_trained), trained, [model_mode, classifier, done])
    return data, found


def _setting(settings: list, name: str):
    """The widget of one ``DetectionSettings`` field (the list is in field order)."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(h.DetectionSettings)]
    return settings[names.index(name)]


def _segments_tab(t) -> None:
    d = SegmentSettings()
    with gr.Row():
        audio_dir = gr.Textbox(label=t("seg_audio"))
        results = gr.Textbox(label=t("seg_results"))
        out = gr.Textbox(label=t("seg_out"))
    with gr.Row():
        min_conf = gr.Slider(0.0, 1.0, d.min_conf, step=0.01, label=t("min_conf"))
        max_conf = gr.Slider(0.0, 1.0, d.max_conf, step=0.01, label=t("max_conf"))
        max_segments = gr.Number(d.max_segments, precision=0, minimum=1, label=t("max_segments"))
        seg_length = gr.Number(d.seg_length, minimum=1.0, maximum=60.0, label=t("seg_length"))
        mode = gr.Dropdown(list(COLLECTION_MODES), value=d.collection_mode,
                           label=t("collection_mode"))
    go = gr.Button(t("cut"), variant="primary")
    summary = gr.Textbox(label=t("summary"), interactive=False, lines=3)
    players = []
    with gr.Row():
        for i in range(6):
            players.append(gr.Audio(label=f"{t('preview')} {i + 1}", interactive=False,
                                    visible=False))

    def cut(a, r, o, lo, hi, n, length, m):
        text, clips = h.run_segments(a, r, o, lo, hi, n, length, m)
        updates = [gr.Audio(value=clips[i][1], label=clips[i][0], visible=True)
                   if i < len(clips) else gr.Audio(value=None, visible=False)
                   for i in range(len(players))]
        return text, *updates

    go.click(_errors(cut), [audio_dir, results, out, min_conf, max_conf, max_segments,
                            seg_length, mode], [summary, *players])


def launch(host: str = "127.0.0.1", port: int | None = None, share: bool = False,
           workdir: str | None = None, open_browser: bool = False) -> None:
    """Start the app (blocking). Files the app shows are written under ``workdir``."""
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="edgebird-gui-"))
    session = h.Session(folder)
    app = build_app(session)
    # quiet: Gradio's own start-up hint tells users to "set share=True in launch()", which
    # means nothing to them; the option is edgebird's --share, said in our line below.
    app.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, share=share, inbrowser=open_browser,
        allowed_paths=[str(folder)], i18n=app.i18n_obj, show_error=True, quiet=True,
        head=review_tab.SHORTCUT_JS,
        prevent_thread_lock=True, app_kwargs={"middleware": [Middleware(SameOriginWrites)]})
    print(startup_line(app.local_url, app.share_url), flush=True)
    app.block_thread()


def startup_line(local_url: str, share_url: str | None) -> str:
    """What the terminal says once the page is up, in edgebird's own words and options."""
    if share_url:
        return f"edgebird GUI: {local_url} and public link {share_url} (Ctrl+C stops it)"
    return (f"edgebird GUI: open {local_url} in a browser (Ctrl+C stops it; "
            f"edgebird gui --share gives a public link)")
