"""Runs the peers' LIBRARY entry points as whole processes, inside the peers' virtualenv.

``bench_peers.py`` starts this file with the peers' Python (never edgebird's). BirdNET-Analyzer
is run through its own console scripts instead; birdnetlib and ``birdnet`` have no CLI for a
batch, so this is the smallest program a user would write with each, following their READMEs:

    python peer_driver.py birdnetlib-analyze DIR --processes 2
    python peer_driver.py birdnet-predict FILE... --workers 2 --batch-size 1
    python peer_driver.py birdnet-encode FILE... --workers 2 --batch-size 1
    python peer_driver.py scores WINDOWS.npz FILE... -o SCORES.npz        (agreement check)

Only the standard library, numpy and the peers are imported here. Each command prints one
line ``segments=N`` so the caller can check that the work was really done.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def birdnetlib_analyze(args: argparse.Namespace) -> int:
    """birdnetlib's directory analyzer: one process per file from a pool of ``processes``,
    each building its own ``Analyzer`` (as birdnetlib's README shows)."""
    from birdnetlib.analyzer import Analyzer
    from birdnetlib.batch import DirectoryMultiProcessingAnalyzer

    batch = DirectoryMultiProcessingAnalyzer(
        args.directory, analyzers=[Analyzer()], patterns=["*.wav", "*.mp3", "*.flac"],
        min_conf=args.min_conf, processes=args.processes)
    batch.process()
    recordings = batch.directory_recordings
    failed = [r.path for r in recordings if getattr(r, "error", False)]
    if failed or len(recordings) == 0:
        print(f"birdnetlib failed on {failed or 'everything'}", file=sys.stderr)
        return 1
    import soundfile  # birdnetlib does not keep the duration in its multiprocessing results

    segments = sum(int(np.ceil(soundfile.info(r.path).duration / 3.0)) for r in recordings)
    detections = sum(len(r.detections) for r in recordings)
    print(f"files={len(recordings)} detections={detections} segments={segments}")
    return 0


def _birdnet_model():
    import birdnet

    return birdnet.load("acoustic", "2.4", "tf", precision="fp32", lang="en_us")


def _unprocessable(result) -> list:
    """birdnet 1.3.1 has ``unprocessable_inputs`` as a property on prediction results and as
    a method on encoding results."""
    u = result.unprocessable_inputs
    return list(u() if callable(u) else u)


def birdnet_predict(args: argparse.Namespace) -> int:
    model = _birdnet_model()
    result = model.predict(args.files, n_workers=args.workers, batch_size=args.batch_size,
                           default_confidence_threshold=args.min_conf)
    if len(_unprocessable(result)):
        print(f"birdnet could not process {_unprocessable(result)}", file=sys.stderr)
        return 1
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out)  # what a user keeps; written like edgebird's tables are
    print(f"files={result.n_inputs} segments={int(np.sum(np.ceil(result.input_durations / 3)))}")
    return 0


def birdnet_encode(args: argparse.Namespace) -> int:
    model = _birdnet_model()
    result = model.encode(args.files, n_workers=args.workers, batch_size=args.batch_size)
    if len(_unprocessable(result)):
        print(f"birdnet could not process {_unprocessable(result)}", file=sys.stderr)
        return 1
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    result.save(args.output)
    kept = int(np.sum(~np.all(result.embeddings_masked, axis=-1)))  # [file, segment, 1024]
    print(f"files={result.n_inputs} segments={kept}")
    return 0


def scores(args: argparse.Namespace) -> int:
    """For the agreement check: BirdNET logits from each peer.

    * ``bna_windows``: BirdNET-Analyzer's ``model.predict`` on edgebird's own decoded 48 kHz
      windows (the same input samples: the model as each tool runs it).
    * ``birdnet_windows``: ``birdnet``'s ``predict_arrays`` on the same windows.
    * ``bna_files`` / ``birdnet_files``: each tool decoding and framing the files itself, as
      a user runs it (BNA: librosa + resampy ``kaiser_fast``; birdnet: soundfile + scipy FFT
      resampling per segment).
    Logits are saved, aligned to the window order of ``WINDOWS.npz`` (file index, start).
    """
    import birdnet_analyzer.config as cfg
    from birdnet_analyzer import model as bna_model
    from birdnet_analyzer.analyze import utils as bna_utils

    data = np.load(args.windows, allow_pickle=False)
    windows = data["windows"]
    file_index = data["file_index"]
    starts_s = data["start_s"]
    files = [str(f) for f in data["files"]]

    cfg.MODEL_PATH = cfg.BIRDNET_MODEL_PATH  # what BNA's _set_params sets for BirdNET
    cfg.SAMPLE_RATE = cfg.BIRDNET_SAMPLE_RATE
    cfg.SIG_LENGTH = cfg.BIRDNET_SIG_LENGTH
    cfg.LABELS_FILE = cfg.BIRDNET_LABELS_FILE
    cfg.LABELS = Path(cfg.LABELS_FILE).read_text(encoding="utf-8").splitlines()
    cfg.TFLITE_THREADS = 1
    cfg.APPLY_SIGMOID = False
    cfg.BATCH_SIZE = 1
    out: dict[str, np.ndarray] = {}
    out["bna_windows"] = np.concatenate(
        [bna_model.predict(windows[i:i + 8]) for i in range(0, len(windows), 8)])

    bna_files = np.full_like(out["bna_windows"], np.nan)
    where = {(int(f), round(float(s), 2)): k
             for k, (f, s) in enumerate(zip(file_index, starts_s, strict=True))}
    for f, path in enumerate(files):
        for start, _end, logits in bna_utils.iterate_audio_chunks(path):
            k = where.get((f, round(float(start), 2)))
            if k is not None:
                bna_files[k] = logits
    out["bna_files"] = bna_files

    model = _birdnet_model()
    kw = dict(top_k=None, apply_sigmoid=False, default_confidence_threshold=None, n_workers=1)
    res = model.predict_arrays([(w, 48000) for w in windows], **kw)
    out["birdnet_windows"] = _dense(res, model)[:, 0, :]
    res = model.predict(files, **kw)
    dense = _dense(res, model)  # [file, segment, species]
    bn_files = np.full_like(out["bna_windows"], np.nan)
    for k, (f, s) in enumerate(zip(file_index, starts_s, strict=True)):
        seg = int(round(float(s) / 3.0))
        if seg < dense.shape[1]:
            bn_files[k] = dense[int(f), seg]
    out["birdnet_files"] = bn_files
    out["birdnet_labels"] = np.array(model.species_list if hasattr(model, "species_list")
                                     else res.species_list)
    np.savez(args.output, **out)
    print(f"segments={len(windows)}")
    return 0


def _dense(result, model) -> np.ndarray:
    """A prediction result as logits ``[input, segment, species]`` in the labels file's order."""
    ids = np.asarray(result.species_ids)
    probs = np.asarray(result.species_probs, dtype=np.float32)
    n_species = len(result.species_list)
    dense = np.full((*ids.shape[:2], n_species), np.nan, dtype=np.float32)
    i, j, k = np.indices(ids.shape)
    ok = (ids >= 0) & (ids < n_species)  # padding of shorter files holds other values
    masked = getattr(result, "species_masked", None)
    if masked is not None:
        ok &= ~np.asarray(masked)
    dense[i[ok], j[ok], ids[ok]] = probs[ok]
    return dense


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("birdnetlib-analyze")
    a.add_argument("directory")
    a.add_argument("--processes", type=int, default=os.cpu_count())
    a.add_argument("--min-conf", type=float, default=0.25)
    a.set_defaults(func=birdnetlib_analyze)
    for name, func in (("birdnet-predict", birdnet_predict), ("birdnet-encode", birdnet_encode)):
        b = sub.add_parser(name)
        b.add_argument("files", nargs="+")
        b.add_argument("--workers", type=int, default=os.cpu_count())
        b.add_argument("--batch-size", type=int, default=1)
        b.add_argument("--min-conf", type=float, default=0.25)
        b.add_argument("-o", "--output", required=True)
        b.set_defaults(func=func)
    s = sub.add_parser("scores")
    s.add_argument("windows")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=scores)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
