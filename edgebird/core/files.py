"""Files the kit and the desktop tools write and check: atomic writes and the one hash helper.

Every result file (tables, models, the store's parts, the recorder's clips) is written to a
temporary name beside its target and renamed, so a reader (or a rerun after ``kill -9``) sees
a whole file or none. Hashing lives here once: content keys (blake2b) and the SHA-256 that
reports and the recorder name a model by, read in 1 MiB blocks so a 52 MB model never sits in
memory twice. Standard library only (the field kit ships this package as it is).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def hash_file(path: str | os.PathLike, algorithm: str = "blake2b") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=20) if algorithm == "blake2b" else hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()



@functools.lru_cache(maxsize=1)
def _new_file_mode() -> int:
    """What ``open()`` would give a new file (0o666 minus the umask). mkstemp makes 0o600
    files, which would leave results unreadable to a colleague or a web server."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0o644


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """A temporary path beside ``path`` to write into; on success it replaces ``path`` in one
    rename (readers never see half a file), on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sweep_temp_files(folder: Path) -> int:
    """Remove the temp files ``atomic_path`` leaves when its process is killed mid-write
    (``kill -9``, a cluster worker lost): hidden, named ``.<file>.<random>.tmp``. Call it when
    no writer can still be running on ``folder``, i.e. at the end of a run."""
    n = 0
    for p in Path(folder).rglob(".*.tmp"):
        if p.is_file() and len(p.name.split(".")) >= 4:
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
