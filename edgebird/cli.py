"""Command line: argument parsing only; each command calls one library function.

Heavy imports (the interpreter, TensorFlow for training) happen inside the commands, so
``edgebird --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys

from edgebird import __version__

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
                       help="which windows of each file: all (segments, default), the middle "
                            "one, the first one, or the loudest (smart)")


def _add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("speed (never changes results)")
    g.add_argument("--workers", type=int, default=0,
                   help="worker processes (default 0: one per core)")
    g.add_argument("--threads", type=int, default=1,
                   help="interpreter threads per worker (default 1: measured fastest)")
    g.add_argument("--batch-size", type=int, default=4,
                   help="windows per model call (default 4; more uses memory, not speed)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _audio_settings(args):
    from edgebird.audio import AudioSettings

    return AudioSettings(overlap=args.overlap, fmin=args.fmin, fmax=args.fmax,
                         min_segment_seconds=args.min_segment,
                         crop_mode=getattr(args, "crop_mode", "segments"))


def _engine_settings(args):
    from edgebird.engine import EngineSettings

    return EngineSettings(workers=args.workers, threads=args.threads, batch_size=args.batch_size)


def cmd_embed(args) -> int:
    from edgebird.embed import embed_files

    summary = embed_files(args.inputs, args.output, _audio_settings(args), _engine_settings(args),
                          csv_dir=args.csv, progress=not args.quiet)
    print(summary.text())
    print(f"store: {args.output}")
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def cmd_demo(args) -> int:
    from edgebird.demo import run_demo

    result = run_demo(args.output, engine=_engine_settings(args), progress=not args.quiet)
    return EXIT_OK if result["summary"].failed == [] else EXIT_SOME_FAILED


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
    _add_engine_options(p)
    p.set_defaults(func=cmd_embed)

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
    except KeyboardInterrupt:
        print("\ninterrupted: finished files are kept; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
