"""Options made from the settings dataclasses: every default typed once, one meaning per flag."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from edgebird import cli
from edgebird.audio import TRAINING_CROP_MODE, AudioSettings
from edgebird.evaluation.evaluate import EvaluateSettings
from edgebird.experiments.commands import REPORT_POS_WEIGHTS, CurveSettings, DataOptions
from edgebird.experiments.pseudolabel import PseudoSettings
from edgebird.options import (
    KEY,
    ArgumentParser,
    add_options,
    choices_of,
    default_of,
    dest,
    opt,
    option_values,
    settings_from_args,
)
from edgebird.pipeline.analyze import AnalyzeSettings
from edgebird.pipeline.engine import EngineSettings
from edgebird.pipeline.segments import SegmentSettings
from edgebird.search.run import SearchSettings
from edgebird.species import Location
from edgebird.training.train import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = (AudioSettings, EngineSettings, AnalyzeSettings, SegmentSettings, TrainSettings,
            CurveSettings, DataOptions, PseudoSettings, Location, EvaluateSettings,
            SearchSettings)


@dataclasses.dataclass(frozen=True)
class Toy:
    name: str = dataclasses.field(metadata=opt("--name", help="required: no default"))
    ratio: float = dataclasses.field(default=0.5, metadata=opt("--ratio", help="a float"))
    limit: int | None = dataclasses.field(default=None, metadata=opt("--limit", help="or none"))
    on: bool = dataclasses.field(default=True, metadata=opt("--on", help="on by default"))
    off: bool = dataclasses.field(default=False, metadata=opt("--off", help="off by default"))
    sizes: tuple[int, ...] = dataclasses.field(default=(1, 2), metadata=opt("--sizes", help="n"))
    mode: str = dataclasses.field(default="a", metadata=opt("--mode", choices="ab", help="m"))
    loss: str = dataclasses.field(default="bce", metadata=opt("--focal", const="focal",
                                                               help="a switch to a value"))
    smooth: float = dataclasses.field(default=0.0, metadata=opt(
        "--smooth", nargs="?", const=0.1, help="alone: 0.1"))
    hidden: int = 7  # not an option


def toy_parser(**kw) -> argparse.ArgumentParser:
    p = ArgumentParser(prog="toy")
    add_options(p, Toy, **kw)
    return p


def test_fields_become_options_with_their_defaults_and_types():
    args = toy_parser().parse_args(["--name", "x"])
    assert settings_from_args(Toy, args) == Toy(name="x")
    args = toy_parser().parse_args(["--name", "x", "--ratio", "2", "--limit", "3", "--no-on",
                                    "--off", "--sizes", "4", "5", "6", "--mode", "b", "--focal",
                                    "--smooth"])
    assert settings_from_args(Toy, args, hidden=8) == Toy(
        "x", 2.0, 3, False, True, (4, 5, 6), "b", "focal", 0.1, 8)
    assert toy_parser().parse_args(["--name", "x", "--smooth", "0.3"]).__dict__[
        dest(Toy, "smooth")] == 0.3
    with pytest.raises(SystemExit):  # required, since the field has no default
        toy_parser().parse_args([])
    with pytest.raises(SystemExit):
        toy_parser().parse_args(["--name", "x", "--mode", "c"])


def test_only_exclude_rename_and_per_command_defaults():
    p = toy_parser(only=["ratio", "name"], rename={"ratio": ("--r", "--rate")},
                   defaults={"name": None})
    assert [a.option_strings for a in p._actions[1:]] == [["--r", "--rate"], ["--name"]]
    args = p.parse_args(["--rate", "3"])
    assert option_values(Toy, args) == {"name": None, "ratio": 3.0}
    assert option_values(Toy, toy_parser(exclude=["ratio"]).parse_args(["--name", "x"])).keys() \
        == {f.name for f in dataclasses.fields(Toy)} - {"ratio", "hidden"}
    with pytest.raises(KeyError):
        toy_parser(only=["nope"])


def test_help_shows_the_defaults_that_say_something():
    text = toy_parser().format_help()
    assert "a float (default: 0.5)" in text and "on by default (default: on)" in text
    assert "(default: 1 2)" in text and "(default: a)" in text and "alone: 0.1 (default: 0)" in text
    for quiet in ("or none", "off by default", "a switch to a value", "required: no default"):
        assert f"{quiet} (default" not in text, quiet


def test_default_and_choices_readers():
    assert default_of(Location, "threshold") == 0.03 and default_of(Toy, "hidden") == 7
    assert choices_of(AudioSettings, "crop_mode") == ("segments", "center", "first", "smart")
    with pytest.raises(KeyError):
        default_of(Location, "lat")


def test_every_option_has_flags_and_help():
    for cls in SETTINGS:
        for f in dataclasses.fields(cls):
            if KEY in f.metadata:
                o = f.metadata[KEY]
                assert o.flags and o.help.strip(), f"{cls.__name__}.{f.name}"


# -- the commands -----------------------------------------------------------------------------
class Called(Exception):
    """Raised by a patched library function with what the command passed it."""


@pytest.fixture
def calls(monkeypatch):
    """Patch every library function a command calls; ``calls(argv)`` gives its arguments."""
    import edgebird.demo
    import edgebird.deploy
    import edgebird.experiments.commands as ex
    import edgebird.pipeline.analyze
    import edgebird.pipeline.embed
    import edgebird.pipeline.segments
    import edgebird.species
    import edgebird.training.classifier

    for module, name in [(edgebird.pipeline.embed, "embed_files"),
                         (edgebird.pipeline.analyze, "analyze_files"),
                         (edgebird.pipeline.segments, "extract_segments"),
                         (edgebird.training.classifier, "train_from_data"),
                         (edgebird.species, "species_at"), (edgebird.deploy, "build_kit"),
                         (edgebird.demo, "run_demo"), (ex, "curve_experiment"),
                         (ex, "pseudo_experiment"), (ex, "report_experiment")]:
        def fake(*args, **kwargs):
            raise Called(args, kwargs)
        monkeypatch.setattr(module, name, fake)

    def call(argv: list[str]) -> tuple[tuple, dict]:
        with pytest.raises(Called) as info:
            cli.main(argv)
        return info.value.args

    return call


def of(cls: type, args: tuple, kwargs: dict) -> list:
    return [a for a in (*args, *kwargs.values()) if isinstance(a, cls)]


def test_minimal_commands_pass_the_dataclass_defaults(calls, tmp_path):
    """The test that fails when a default is typed twice and the copies drift apart."""
    d = str(tmp_path)
    training_audio = AudioSettings(crop_mode=TRAINING_CROP_MODE)
    for argv, expected in [
            (["embed", d, "-o", d], [AudioSettings(), EngineSettings()]),
            (["analyze", d, "-o", d], [AnalyzeSettings(), AudioSettings(), EngineSettings()]),
            (["segments", d, "-o", d], [SegmentSettings()]),
            (["train", d, "-o", d], [TrainSettings(), training_audio, EngineSettings()]),
            (["species", "-o", d, "--lat", "1", "--lon", "2"], [Location(1, 2)]),
            (["demo"], [EngineSettings()]),
            (["experiment", "curve", d, "-o", d], [CurveSettings(), DataOptions()]),
            (["experiment", "pseudo", d, "-o", d],
             [PseudoSettings(), CurveSettings(), DataOptions()]),
            (["experiment", "report", d, "-o", d],
             [CurveSettings(), PseudoSettings(pos_weights=REPORT_POS_WEIGHTS), DataOptions()])]:
        args, kwargs = calls(argv)
        for want in expected:
            assert of(type(want), args, kwargs) == [want], (argv, type(want).__name__)
    assert DataOptions().audio == training_audio
    from edgebird.deploy import DEFAULT_STATION

    args, kwargs = calls(["deploy", "--model", d, "-o", d])
    assert kwargs["location"] is None and kwargs["station"] == DEFAULT_STATION


def test_train_batch_size_is_the_mini_batch_and_the_engine_has_its_own(calls, tmp_path):
    d = str(tmp_path)
    args, kwargs = calls(["train", d, "-o", d, "--head", "dense", "--batch-size", "8",
                          "--embed-batch-size", "5"])
    assert of(TrainSettings, args, kwargs)[0].batch_size == 8
    assert of(EngineSettings, args, kwargs)[0].batch_size == 5
    args, kwargs = calls(["analyze", d, "-o", d, "--batch-size", "5"])
    assert of(EngineSettings, args, kwargs)[0].batch_size == 5
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "--embed-batch-size" in text and "mini-batch" in text


def test_options_keep_their_meaning(calls, tmp_path):
    d = str(tmp_path)
    args, kwargs = calls(["analyze", d, "-o", d, "--min-conf", "0.5", "--lat", "50", "--lon",
                          "10", "--week", "5", "--sf-thresh", "0.1", "--rtype", "csv",
                          "r,audacity", "--no-skip-existing", "--combine-results",
                          "--additional-columns", "lat", "--overlap", "1"])
    s = of(AnalyzeSettings, args, kwargs)[0]
    assert (s.min_conf, s.location, s.rtypes, s.skip_existing, s.combine,
            s.additional_columns) == (0.5, Location(50, 10, 5, 0.1), ("csv", "r", "audacity"),
                                      False, True, ("lat",))
    assert of(AudioSettings, args, kwargs)[0].overlap == 1.0
    args, kwargs = calls(["train", d, "-o", d, "--head", "dense", "--focal-loss",
                          "--label-smoothing", "--crop-mode", "center", "--store", "s",
                          "--annotations", "a.csv"])
    s = of(TrainSettings, args, kwargs)[0]
    assert (s.loss, s.label_smoothing) == ("focal", 0.1)
    assert of(AudioSettings, args, kwargs)[0].crop_mode == "center"
    assert (kwargs["store"], kwargs["annotations"]) == ("s", "a.csv")
    args, kwargs = calls(["experiment", "pseudo", d, "-o", d, "--pseudo-shots", "3",
                          "--shots", "2", "4", "--pos-weight", "2", "--no-open-set"])
    assert of(PseudoSettings, args, kwargs)[0] == PseudoSettings(shots=3, pos_weights=(2.0,))
    assert of(CurveSettings, args, kwargs)[0] == CurveSettings(shots=(2, 4), open_set=False)


def _leaves(p: argparse.ArgumentParser, path=()):
    subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), p
    for a in subs:
        for name, q in a.choices.items():
            yield from _leaves(q, (*path, name))


def test_every_settings_option_is_offered_and_its_help_shows_the_default():
    offered = {}
    for name, p in _leaves(cli.build_parser()):
        for a in p._actions:
            if "." in a.dest:
                offered.setdefault(a.dest, set()).add(name)
                help_text = p.formatter_class(prog="x")._get_help_string(a)
                if a.default not in (None, (), False) and a.nargs != 0:
                    assert "(default: " in help_text, (name, a.option_strings)
    wanted = {dest(cls, f.name) for cls in SETTINGS for f in dataclasses.fields(cls)
              if KEY in f.metadata}
    assert wanted == set(offered), wanted ^ set(offered)
    assert offered[dest(AnalyzeSettings, "species_codes")] == {"analyze"}
    assert offered[dest(Location, "threshold")] == {"analyze", "species", "deploy"}


def test_the_cli_types_no_default_of_its_own():
    """Numbers and switches come from the dataclasses: no literal ``default=`` in cli.py."""
    tree = ast.parse((ROOT / "edgebird" / "cli.py").read_text())
    typed = [ast.unparse(node) for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
             for kw in node.keywords if kw.arg == "default" and isinstance(kw.value, ast.Constant)
             and isinstance(kw.value.value, int | float)]
    assert typed == []
