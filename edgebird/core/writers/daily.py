"""A recorder's UTC day as tables: the field recorder writes them each day, ``edgebird
collect`` again from a card's database; one function so both give the same bytes."""

from __future__ import annotations

import datetime as dt

from edgebird.core.scores import Detection
from edgebird.core.writers.formats import TableContext, get_format

#: the recorder's UTC time format in ``detections.time_utc``
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def day_tables(rows: list[tuple], station: str, rate: int) -> dict[str, str]:
    """``{suffix: text}`` for the Raven table (times in seconds since 00:00 UTC, one
    "recording" per day) and the CSV (per source, offsets in it) of one day's rows
    ``(time_utc, source, start_s, end_s, species, confidence)``."""
    raven, csv = get_format("table"), get_format("csv")
    of_day, by_source = [], {}
    for when, source, start, end, species, conf in rows:
        t = dt.datetime.strptime(when, TIME_FORMAT)
        s = t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6
        of_day.append(Detection(source, s, s + (end - start), species, conf))
        by_source.setdefault(source, []).append(Detection(source, start, end, species, conf))
    body = "".join(csv.render(dets, TableContext(src)).split("\n", 1)[1]
                   for src, dets in by_source.items())
    return {raven.suffix: raven.render(of_day, TableContext(station, rate)),
            csv.suffix: csv.header + "\n" + body}
