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
    for shown in ("(default: 100)", "(default: dense)", "(default: CustomClassifier)",
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
