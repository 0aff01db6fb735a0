"""Per-file problems: shown on the console and appended to ``error_log.txt``, never fatal."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path


class ErrorLog:
    """Collects ``(path, reason)`` failures and warnings for one run.

    Lines are ``time<TAB>ERROR|WARNING<TAB>path<TAB>reason``, appended (a resumed run adds to
    the log of the interrupted one) and flushed at once, so a crash loses no line.
    """

    def __init__(self, path: str | Path | None, echo: Callable[[str], None] = print):
        self.path = Path(path) if path else None
        self.echo = echo
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []

    def _write(self, level: str, path: str, reason: str) -> None:
        self.echo(f"{level.lower()}: {path}: {reason}")
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"{stamp}\t{level}\t{path}\t{reason}\n")

    def error(self, path: str, reason: str) -> None:
        self.errors.append((str(path), reason))
        self._write("ERROR", str(path), reason)

    def warning(self, path: str, reason: str) -> None:
        self.warnings.append((str(path), reason))
        self._write("WARNING", str(path), reason)


def failure_lines(failed: list[tuple[str, str]]) -> list[str]:
    """The end of a run summary: every failed file with its reason."""
    if not failed:
        return []
    return ["failed files (see error_log.txt):"] + [f"  {p}: {r}" for p, r in failed]


class OutputError(Exception):
    """The output folder cannot be written (read-only, full, not a folder): the run stops
    with a message saying where and why; what was finished before is kept whole."""


def check_output_folder(out: Path) -> None:
    """A bad ``-o`` is a bad option (ValueError), said before any work starts."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output {out} is a file, not a folder: name a folder "
                         "(it is created if missing)")


@contextlib.contextmanager
def output_errors(out: Path, log: ErrorLog) -> Iterator[None]:
    """Turn a failure to write into ``out`` into ``OutputError`` (recorded in the error log
    when the folder takes even that). OSErrors about files outside ``out`` pass unchanged."""
    try:
        yield
    except OSError as exc:
        where = Path(exc.filename) if exc.filename else out
        if exc.filename and not _inside(where, out):
            raise
        reason = f"cannot write {where}: {exc.strerror or exc}"
        try:
            log.error(str(out), reason)
            logged = " (also in error_log.txt)"
        except OSError:
            logged = ""
        raise OutputError(f"{reason}{logged}; finished files are kept whole, fix this and run "
                          "the same command again to resume") from None


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) \
            == os.path.abspath(folder)
    except ValueError:  # pragma: no cover - different drives (Windows)
        return False
