"""Command-line options made from the settings dataclasses, so a default is typed once.

A settings field becomes an option by carrying ``opt(...)`` as its metadata: the flags, the
help text and, where they matter, choices, a metavar or a ``const``. Everything else comes
from the field itself: the default (which ``--help`` shows), the value type (from the type
hint), several values for a tuple field, ``--x/--no-x`` for a switch that is on by default.
``edgebird <command> --help``, the parsed settings and the GUI's widgets (which read
``default_of`` and ``choices_of``) therefore cannot disagree with the dataclass::

    min_conf: float = field(default=DEFAULT_MIN_CONF, metadata=opt("--min-conf", help=...))

    add_options(group, SegmentSettings)                   # building the parser
    settings = settings_from_args(SegmentSettings, args)  # running the command

Each option's ``dest`` is ``"<Class>.<field>"``, so two classes in one command may share a
field name (``TrainSettings.batch_size``, ``EngineSettings.batch_size``) and
``settings_from_args`` needs nothing but the class. Two options may not share a *flag* in one
command (argparse refuses), which keeps one meaning per flag: the caller gives one of them
another flag with ``rename``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: The metadata key ``opt`` files its ``Option`` under.
KEY = "edgebird.option"


@dataclasses.dataclass(frozen=True)
class Option:
    """How a settings field appears on the command line (everything but its default)."""

    flags: tuple[str, ...]
    help: str
    choices: tuple[Any, ...] | None = None
    metavar: str | None = None
    nargs: str | int | None = None
    const: Any = None
    type: Callable[[str], Any] | None = None


def opt(*flags: str, help: str, choices: Iterable[Any] | None = None,
        metavar: str | None = None, nargs: str | int | None = None, const: Any = None,
        type: Callable[[str], Any] | None = None) -> dict[str, Option]:
    """Field metadata making the field an option. ``const`` with no ``nargs`` makes a switch
    that stores ``const`` (``--focal-loss`` sets ``loss="focal"``); with ``nargs="?"`` it is
    the value of the flag given alone. ``type`` is only needed where the hint does not say
    (it is read from ``X``, ``X | None`` and ``tuple[X, ...]``)."""
    if not flags or not help:
        raise ValueError("an option needs its flags and a help text")
    return {KEY: Option(tuple(flags), help, None if choices is None else tuple(choices),
                        metavar, nargs, const, type)}


def dest(cls: type, name: str) -> str:
    """Where argparse keeps the value of ``cls``'s field ``name``."""
    return f"{cls.__name__}.{name}"


def _field(cls: type, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _default(f: dataclasses.Field) -> Any:
    """A field's default, or ``MISSING`` for a required field."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def default_of(cls: type, name: str) -> Any:
    """The default of one field (also for classes with required fields, e.g. ``Location``)."""
    value = _default(_field(cls, name))
    if value is dataclasses.MISSING:
        raise KeyError(f"{cls.__name__}.{name} has no default")
    return value


def choices_of(cls: type, name: str) -> tuple[Any, ...]:
    """The choices of one option field (for menus that offer the same as the CLI)."""
    option = _field(cls, name).metadata.get(KEY)
    if option is None or option.choices is None:
        raise KeyError(f"{cls.__name__}.{name} has no choices")
    return option.choices


def _value_type(hint: Any) -> tuple[Any, bool]:
    """``(element type, several values?)`` of a hint: ``X``, ``X | None``, ``tuple[X, ...]``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def _metavar(flags: tuple[str, ...]) -> str:
    """What argparse would call the value had the dest been the first long flag's."""
    long = next((s for s in flags if s.startswith("--")), flags[0])
    return long.lstrip("-").replace("-", "_").upper()


def _argument(key: str, hint: Any, option: Option, flags: tuple[str, ...],
              default: Any) -> dict[str, Any]:
    """``add_argument``'s keywords for one field (``key``: its dest)."""
    kw: dict[str, Any] = dict(dest=key, help=option.help)
    if default is dataclasses.MISSING:
        kw["required"] = True
    else:
        kw["default"] = default
    value_type, several = _value_type(hint)
    if value_type is bool:  # a switch; on by default, it also gets a --no- form
        kw["action"] = argparse.BooleanOptionalAction if default is True else "store_true"
        return kw
    if option.const is not None and option.nargs is None:
        return {**kw, "action": "store_const", "const": option.const}
    kw["type"] = option.type or value_type
    if option.choices is not None:
        kw["choices"] = option.choices
    if option.metavar or option.choices is None:  # argparse would name it after the dest
        kw["metavar"] = option.metavar or _metavar(flags)
    if several:
        kw["nargs"] = option.nargs or "+"
    elif option.nargs is not None:
        kw["nargs"] = option.nargs
        kw["const"] = option.const
    return kw


def add_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, *,
                only: Iterable[str] | None = None, exclude: Iterable[str] = (),
                rename: Mapping[str, str | tuple[str, ...]] | None = None,
                defaults: Mapping[str, Any] | None = None) -> None:
    """Add ``cls``'s option fields (those with ``opt`` metadata) to a parser or group, in
    field order or ``only``'s. ``only``/``exclude`` pick fields; ``rename`` gives a field
    other flags in this command; ``defaults`` another default in this command (e.g. ``None``
    for ``Location``'s required ``lat`` where a location is optional)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    order, exclude = list(fields if only is None else only), set(exclude)
    rename, defaults = dict(rename or {}), dict(defaults or {})
    unknown = (set(order) | exclude | set(rename) | set(defaults)) - set(fields)
    if unknown:
        raise KeyError(f"{cls.__name__} has no fields {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    for name in order:
        option = fields[name].metadata.get(KEY)
        if option is None or name in exclude:
            continue
        flags = rename.get(name, option.flags)
        flags = (flags,) if isinstance(flags, str) else tuple(flags)
        default = defaults[name] if name in defaults else _default(fields[name])
        parser.add_argument(*flags, **_argument(dest(cls, name), hints[name], option, flags,
                                                default))


def option_values(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The values ``args`` holds for ``cls``'s fields (those ``add_options`` added), by field
    name; several values become a tuple, as the fields hold them."""
    given = vars(args)
    out = {}
    for f in dataclasses.fields(cls):
        key = dest(cls, f.name)
        if key in given:
            value = given[key]
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def settings_from_args(cls: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """``cls`` from the parsed options; fields the command does not offer keep their
    defaults, ``overrides`` set fields that are no options (``location=...``)."""
    return cls(**{**option_values(cls, args), **overrides})


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return " ".join(_shown(v) for v in value)
    return str(value)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends with ``(default: X)`` wherever a default says something: not for
    ``None`` or nothing (the help says what happens then) nor for plain switches (off unless
    given)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        switch = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
        if (default is None or default is argparse.SUPPRESS or default == () or default == []
                or switch or "%(default)" in text or not action.option_strings):
            return text
        return f"{text} (default: {_shown(default).replace('%', '%%')})"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with ``DefaultsHelpFormatter`` and no prefix matching; its
    subcommands' parsers are of this class too (argparse makes them of the parent's class),
    so every ``--help`` shows the defaults and every command refuses abbreviations.

    Prefix matching is off because it silently turns a typo into another option (``--fold 3``
    became ``--folds 3``); an unknown option is refused with the close names instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self._command_parser(parsed)
            unknown = [a for a in extras if a.startswith("-") and len(a) > 1]
            if unknown:
                parser.error(parser.unknown_option_message(unknown[0]))
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _command_parser(self, parsed: argparse.Namespace) -> ArgumentParser:
        """The (sub)command parser that was chosen, so its options are the ones suggested
        and its name is in the error."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(chosen, ArgumentParser):
                    return chosen._command_parser(parsed)
        return self

    def unknown_option_message(self, arg: str) -> str:
        name = arg.split("=", 1)[0]
        known = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        return f"unknown option {name}{hint}"
