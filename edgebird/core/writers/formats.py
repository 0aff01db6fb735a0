"""The one table of result formats: what every reader and writer of a table looks up.

Each ``Format`` says how a table is named on disk (``suffix`` after the audio file's stem,
``combined_name`` for the run-wide table, if BNA writes one), how it starts (``header``, its
first line, which is also how ``readers.detect_rtype`` tells a table's format) and how it is
rendered: ``render(detections, context)``, one signature for all, with ``TableContext``
holding every value some format prints. ``analyze``, the combined tables, the readers,
``segments``, the GUI and the field recorder all read this table, so a new format is one entry
here (and one writer module), as whisper's ``get_writer`` does it.

``FORMATS`` is ordered most informative first (Raven, CSV, Kaleidoscope, R, Audacity): the
order ``segments`` prefers a recording's tables in and combined tables are written in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from edgebird.core import BIRDNET_FMAX_HZ
from edgebird.core.scores import DEFAULT_MIN_CONF, Detection
from edgebird.core.writers import audacity, csv_table, kaleidoscope, r_table, raven


@dataclass(frozen=True)
class TableContext:
    """Everything a format may print besides the detections: the file (``audio_path`` as it
    goes into the table, its ``native_rate``), the bandpass (Raven's frequency columns) and
    the run's settings (Kaleidoscope, R and the CSV's additional columns). Field names
    ``lat`` … ``model`` are the CSV's additional column names. ``lat``, ``lon`` and ``week``
    are -1 without a location, as BNA writes them."""

    audio_path: str
    native_rate: int = 48000
    fmin: float = 0.0
    fmax: float = BIRDNET_FMAX_HZ
    lat: float = -1
    lon: float = -1
    week: int = -1
    overlap: float = 0.0
    sensitivity: float = 1.0
    min_conf: float = DEFAULT_MIN_CONF
    species_list: str = ""
    model: str = ""
    codes: Mapping[str, str] | None = None  # Raven's Species Code by label
    additional_columns: tuple[str, ...] = ()  # CSV: which of csv_table.ADDITIONAL to add


Render = Callable[[list[Detection], TableContext], str]
#: What every per-file suffix starts with: ``<stem>.BirdNET.<kind>``.
MARK = ".BirdNET."


@dataclass(frozen=True)
class Format:
    """One result type. ``header`` is the table's first line without its newline ("" for
    Audacity labels, which have none); ``sep`` splits its columns; ``combined_name`` is the
    run-wide table's file name (None: BNA writes no combined table of this kind); ``timeline``:
    that table's times run on from file to file (Raven), so combining needs the durations."""

    name: str
    title: str
    suffix: str
    header: str
    sep: str
    combined_name: str | None
    render: Render
    aliases: tuple[str, ...] = ()
    timeline: bool = False  # its combined table runs times on across files (needs durations)

    @property
    def kind(self) -> str:
        """The suffix without ``.BirdNET.``: ``selection.table.txt``, ``results.csv``, ..."""
        return self.suffix.split(MARK, 1)[1]


def _raven(detections: list[Detection], c: TableContext) -> str:
    return raven.render(detections, c.audio_path, c.native_rate, c.fmin, c.fmax, c.codes)


def _csv(detections: list[Detection], c: TableContext) -> str:
    extra = {k: getattr(c, k) for k in c.additional_columns}
    return csv_table.render(detections, c.audio_path, extra)


def _kaleidoscope(detections: list[Detection], c: TableContext) -> str:
    return kaleidoscope.render(detections, c.audio_path, c.lat, c.lon, c.week, c.overlap,
                               c.sensitivity)


def _r(detections: list[Detection], c: TableContext) -> str:
    return r_table.render(detections, c.audio_path, c.lat, c.lon, c.week, c.overlap,
                          c.sensitivity, c.min_conf, c.species_list, c.model)


def _audacity(detections: list[Detection], c: TableContext) -> str:
    return audacity.render(detections)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("table", "Raven selection table", raven.SUFFIX, raven.HEADER.rstrip("\n"), "\t",
           "BirdNET_SelectionTable.txt", _raven, aliases=("raven", "selection"), timeline=True),
    Format("csv", "CSV", csv_table.SUFFIX, csv_table.HEADER, ",",
           "BirdNET_CombinedTable.csv", _csv),
    Format("kaleidoscope", "Kaleidoscope", kaleidoscope.SUFFIX,
           kaleidoscope.HEADER.rstrip("\n"), ",", "BirdNET_Kaleidoscope.csv", _kaleidoscope),
    Format("r", "R (BNA 1.x)", r_table.SUFFIX, r_table.HEADER.rstrip("\n"), ",",
           "BirdNET_RTable.csv", _r),
    Format("audacity", "Audacity labels", audacity.SUFFIX, "", "\t", None, _audacity),
)}

#: The names users give, lower-case: every format's name and aliases.
_BY_NAME = {n: f for f in FORMATS.values() for n in (f.name, *f.aliases)}
#: How messages list them: ``table (raven/selection), csv, ...``.
CHOICES = ", ".join(f.name + (f" ({'/'.join(f.aliases)})" if f.aliases else "")
                    for f in FORMATS.values())


def get_format(name: str) -> Format:
    """The format called ``name`` (or an alias: ``raven`` and ``selection`` are ``table``);
    ValueError for an unknown name."""
    key = str(name).strip().lower()
    if key not in _BY_NAME:
        raise ValueError(f"unknown result type {key!r}; choose from {CHOICES}")
    return _BY_NAME[key]


def combined_names() -> tuple[str, ...]:
    """File names of the combined tables, in ``FORMATS`` order."""
    return tuple(f.combined_name for f in FORMATS.values() if f.combined_name)
