"""Combined tables over a whole run, built from the per-file tables on disk (BNA 2.4's
``--combine_results``), so files skipped as already analyzed are included too.

* ``BirdNET_SelectionTable.txt``: every per-file Raven table, selections renumbered from 1,
  begin/end shifted by the summed durations of the files before it (one Raven "file list"
  session then shows the whole run), ``nocall`` placeholder rows dropped; the audio paths in
  order go to ``BirdNET_SelectionTable.list.txt``. Shifted times print as Python floats
  (``str(float(t) + offset)``), as BNA does.
* ``BirdNET_CombinedTable.csv``, ``BirdNET_Kaleidoscope.csv``, ``BirdNET_RTable.csv``: the
  header once, then every file's rows.
"""

from __future__ import annotations

from pathlib import Path

from edgebird.core.writers import raven
from edgebird.core.writers.formats import Format


def list_name(fmt: Format) -> str:
    """The audio list beside a combined Raven table: ``BirdNET_SelectionTable.list.txt``."""
    return str(fmt.combined_name).rsplit(".", 1)[0] + ".list.txt"


def combine(fmt: Format, tables: list[tuple[Path, float]]) -> dict[str, str]:
    """``{file name: text}`` of ``fmt``'s combined table (and, for Raven, its audio list) from
    ``(per-file table, audio duration in s)`` pairs in run order. Only a ``timeline`` format
    (Raven) uses the durations; the others are header once, then rows."""
    if fmt.timeline:
        text, listing = combine_raven(tables)
        return {str(fmt.combined_name): text, list_name(fmt): listing}
    return {str(fmt.combined_name): concatenate([p for p, _ in tables], fmt.header + "\n")}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def combine_raven(tables: list[tuple[Path, float]]) -> tuple[str, str]:
    """``(table text, list text)`` from ``(per-file table, audio duration in s)`` pairs."""
    out, files = [raven.HEADER], []
    sid, offset = 1, 0.0
    for path, duration in tables:
        lines = _lines(path)
        if not lines or not lines[0].startswith("Selection") or len(lines) < 2:
            continue
        files.append(lines[1].split("\t")[10])
        for line in lines[1:]:
            cols = line.split("\t")
            if not line.strip() or (cols[7] == "nocall" and cols[8] == "nocall"):
                continue
            cols[0] = str(sid)
            sid += 1
            cols[3] = str(float(cols[3]) + offset)
            cols[4] = str(float(cols[4]) + offset)
            out.append("\t".join(cols))
        offset += duration
    return "".join(out), "".join(f + "\n" for f in files)


def concatenate(paths: list[Path], header: str) -> str:
    """Header once (the first file's, which carries any additional columns), then rows."""
    out: list[str] = []
    for path in paths:
        lines = _lines(path)
        if not lines:
            continue
        if not out:
            out.append(lines[0])
        out += [ln for ln in lines[1:] if ln.strip()]
    return "".join(out) if out else header
