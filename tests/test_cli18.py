"""Issue 18's command-line papercuts: each test failed before its fix."""

from __future__ import annotations

import pytest

from edgebird.cli import build_parser, main


def _leaves(parser, path=()):
    """Every (sub)command parser, with its command path."""
    yield path, parser
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                yield from _leaves(sub, (*path, name))


def test_no_command_accepts_an_abbreviated_option():
    for path, parser in _leaves(build_parser()):
        assert parser.allow_abbrev is False, path


def test_an_unknown_option_is_refused_with_the_close_names(tmp_path, capsys):
    argv = ["train", str(tmp_path), "-o", str(tmp_path / "o"), "--fold", "3"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "edgebird train: error: unknown option --fold (did you mean --folds?)" in err
    with pytest.raises(SystemExit):
        main([*argv[:-2], "--fold=3"])
    assert "unknown option --fold (did you mean --folds?)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["inspect", "m.tflite", "--zzzzzz"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown option --zzzzzz" in err and "did you mean" not in err


def test_train_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for shown in ("(default: 100)", "(default: anchored)", "(default: CustomClassifier)",
                  "(default: replace)"):
        assert shown in out, shown


def test_segments_without_tables_says_where_it_looked_and_fails(tmp_path, capsys):
    (tmp_path / "audio").mkdir()
    assert main(["segments", str(tmp_path / "audio"), "-o", str(tmp_path / "clips")]) == 1
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert f"no result tables found in {tmp_path / 'audio'}" in err
    assert "edgebird analyze" in err and "BirdNET_SelectionTable.txt" in err
    assert "clips written" not in captured.out + captured.err


def _head(folder, name, classes=("A_a", "B_b")):
    import numpy as np

    from edgebird.backbones.birdnet import graph as tflite_graph

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.tflite"
    model.write_bytes(tflite_graph.dense_head_model(
        [(np.zeros((1024, len(classes)), np.float32), np.zeros(len(classes), np.float32),
          False)]))
    (folder / f"{name}_Labels.txt").write_text("".join(f"{c}\n" for c in classes))
    return model


def test_inspect_a_folder_lists_its_models(tmp_path, capsys):
    out = tmp_path / "out"
    _head(out, "M_head")
    _head(out, "M_fold1")
    (out / "broken.tflite").write_bytes(b"not a model")
    assert main(["inspect", str(out)]) == 1  # one file in it is unusable
    text = capsys.readouterr().out
    assert f"{out}: 3 model(s)" in text and "no such file" not in text
    line = next(ln for ln in text.splitlines() if "M_head.tflite" in ln)
    assert "head only" in line and "2 classes" in line
    assert "broken.tflite" in text and "unusable" in text and "classes: A_a, B_b" in text
    (out / "broken.tflite").unlink()
    assert main(["inspect", str(out)]) == 0
    assert main(["inspect", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"no .tflite models in the folder {tmp_path} (there are some in {out})" in err


def test_inspect_prints_every_param_whole(tmp_path, capsys):
    model = _head(tmp_path, "M")
    params = {f"setting {i}": "x" * 40 for i in range(15)}
    params["last setting"] = "sigmoid(clip(logit + (S-1)*10, -20, 20))"
    (tmp_path / "M_Params.csv").write_text(
        ",".join(params) + "\n" + ",".join(f'"{v}"' for v in params.values()) + "\n")
    assert main(["inspect", str(model)]) == 0
    text = capsys.readouterr().out
    assert "  params:\n" in text
    for k, v in params.items():
        assert f"    {k}: {v}\n" in text + "\n", k


def test_a_full_cache_hit_says_so_once_in_words(tmp_path, capsys):
    from fakes import FakeModel, levels_file

    from edgebird.pipeline.embed import embed_files
    from edgebird.pipeline.engine import EngineSettings

    for name in ("a", "b"):
        levels_file(tmp_path / "in" / f"{name}.wav", [0.1, 0.0])
    kw = {"engine": EngineSettings(workers=1), "model": FakeModel()}
    first = embed_files([tmp_path / "in"], tmp_path / "st", progress=False, **kw)
    assert "embedded: 12 s of audio (4 windows) in " in first.text()
    capsys.readouterr()
    again = embed_files([tmp_path / "in"], tmp_path / "st", progress=True, **kw)
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "0win" not in said
    assert said.count("embedding: all 2 files already in the store") == 1
    assert "0 windows" not in again.text() and "0x" not in again.text()
    assert "files: 2 (0 embedded, 2 from the store, 0 failed)" in again.text()


def test_durations_read_as_a_person_says_them_and_a_skipped_run_says_nothing_to_do(tmp_path):
    from fakes import FakeModel, levels_file

    from edgebird.pipeline.analyze import AnalyzeSettings, analyze_files
    from edgebird.pipeline.batch import duration_text
    from edgebird.pipeline.engine import EngineSettings

    assert [duration_text(s) for s in (0.04, 2.54, 25.2, 250, 240, 4320)] == \
        ["0.0 s", "2.5 s", "25 s", "4 min 10 s", "4 min", "1.2 h"]
    levels_file(tmp_path / "in" / "a.wav", [0.1] * 9)

    def run():
        return analyze_files([tmp_path / "in"], tmp_path / "out", AnalyzeSettings(rtypes=("csv",)),
                             engine=EngineSettings(workers=1), model=FakeModel(),
                             progress=False, echo=lambda m: None)

    text = run().text()
    assert "analyzed: 27 s of audio (9 windows) in " in text and " h " not in text
    text = run().text()
    assert "nothing to analyze: 1 file(s) already done" in text
    assert "realtime" not in text and "0 windows" not in text
    assert "nothing to analyze" in (tmp_path / "out" / "analysis_summary.txt").read_text()


def test_the_demo_output_in_the_checkout_is_ignored_by_git():
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    default = build_parser().parse_args(["demo"]).output
    inside = [f"{default}/{p}" for p in ("store/meta.json", "embeddings.png",
                                          "classifier/REPORT.md", "results/x.csv")]
    r = subprocess.run(["git", "check-ignore", *inside], cwd=root, capture_output=True,
                       text=True)
    assert r.stdout.split() == inside
