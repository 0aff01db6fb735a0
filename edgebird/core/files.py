"""Files the kit and the desktop tools write and check: atomic writes and the one hash helper.

Every result file (tables, models, the store's parts, the recorder's clips) is written to a
temporary name beside its target and renamed, so a reader (or a rerun after ``kill -9``) sees
a whole file or none. Hashing lives here once: content keys (blake2b) and the SHA-256 that
reports and the recorder name a model by, read in 1 MiB blocks so a 52 MB model never sits in
memory twice (``cached_hash_file`` remembers it per path, size and mtime); ``hash_text`` keys
strings. Standard library only (the field kit ships this package as it is).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
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


def cached_hash_file(path: str | os.PathLike, algorithm: str = "sha256",
                     memo: str | os.PathLike | None = None) -> str:
    """``hash_file``, remembered per (path, size, mtime): within the process, and across
    processes in ``memo`` (a small JSON file, one algorithm per file) when given. For models
    named by their hash at every start-up (hashing BirdNET's 52 MB costs 0.05 s)."""
    st = os.stat(path)
    return _cached_digest(str(path), st.st_size, st.st_mtime_ns, algorithm,
                          str(memo) if memo is not None else "")


@functools.lru_cache(maxsize=32)
def _cached_digest(path: str, size: int, mtime_ns: int, algorithm: str, memo: str) -> str:
    if not memo:
        return hash_file(path, algorithm)
    key = f"{path}|{size}|{mtime_ns}"
    try:
        known = json.loads(Path(memo).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return known[key]
    digest = hash_file(path, algorithm)
    try:
        known = {k: v for k, v in known.items() if not k.startswith(f"{path}|")} \
            if isinstance(known, dict) else {}
        known[key] = digest
        atomic_write_bytes(Path(memo), json.dumps(known, indent=1).encode())
    except OSError:
        pass  # a read-only cache folder only costs the hashing time
    return digest


def hash_text(text: str, length: int = 64) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``text``: keys and short tags made of
    strings (settings, layer names), where the strings themselves would be too long."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


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
