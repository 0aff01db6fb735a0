"""Per-file problems: shown on the console and appended to ``error_log.txt``, never fatal."""

from __future__ import annotations

import time
from collections.abc import Callable
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
