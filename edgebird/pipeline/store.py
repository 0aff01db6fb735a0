"""The embedding store: per-file embeddings on disk, keyed by content and every setting.

Layout under the store folder::

    edgebird-store.json             format marker
    hashes.sqlite                   (path, size, mtime) -> content hash, so reruns skip hashing
    entries/ab/<key>/meta.json      one finished file: metadata, written last
    entries/ab/<key>/part-00000.npz window starts (s) and float32 embeddings, one per work unit
    entries/ab/<key>.partial/       a file being written; its finished parts survive a crash

``key`` hashes the file's content, the audio settings (overlap, bandpass, crop mode, minimum
segment, sample rate) and the model fingerprint: a second run on the same files is a cache
hit, and changed settings never mix with old results. An entry appears by renaming its
``.partial`` folder, so a reader sees whole entries or nothing; every part is itself written
to a temporary name and renamed. Entries are self-describing (``meta.json``), so the store
can be copied, merged or rebuilt without an index.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgebird.core.files import atomic_write_bytes, hash_file, hash_text

FORMAT = 1
MARKER = "edgebird-store.json"


def content_hash(path: str | os.PathLike) -> str:
    """blake2b of the file's bytes (fast, and renames or copies still hit the cache)."""
    return hash_file(path)


def entry_key(digest: str, audio_key: dict, model_fingerprint: str) -> str:
    payload = json.dumps({"content": digest, "audio": audio_key, "model": model_fingerprint,
                          "format": FORMAT}, sort_keys=True)
    return hash_text(payload, 32)


@dataclass
class Entry:
    """One file's embeddings in the store."""

    path: Path
    meta: dict

    @property
    def source(self) -> str:
        return self.meta["source"]

    def parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.npz"))

    def intact(self) -> bool:
        """Every part opens as a whole ``.npz`` (a truncated zip has lost its directory,
        which sits at the end): cheap, no array is read."""
        return all(part_intact(p) for p in self.parts())

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(starts_seconds [n], embeddings [n, dim])`` in time order."""
        starts, embs = [], []
        for p in self.parts():
            with np.load(p) as z:
                starts.append(z["starts"])
                embs.append(z["embeddings"])
        if not starts:
            return np.zeros(0), np.zeros((0, self.meta["embedding_dim"]), dtype=np.float32)
        s, e = np.concatenate(starts), np.concatenate(embs)
        order = np.argsort(s, kind="stable")
        return s[order], e[order]


def part_intact(path: Path) -> bool:
    """A part file holds both arrays' zip members (it was not cut short or damaged)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return {"starts.npy", "embeddings.npy"} <= names


def _read_meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


class EmbeddingStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        marker = self.root / MARKER
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"{self.root} exists and is not a folder")
        if marker.exists():
            fmt = json.loads(marker.read_text()).get("format")
            if fmt != FORMAT:
                raise ValueError(f"{self.root} holds store format {fmt}; this edgebird reads "
                                 f"format {FORMAT}: embed into a new folder")
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(marker, json.dumps({"format": FORMAT}).encode())
        self._conn: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """The hash memo, opened on first use: a cluster worker writing entries never needs
        it (nor SQLite on a network file system)."""
        if self._conn is None:
            self._conn = sqlite3.connect(self.root / "hashes.sqlite", timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, "
                               "size INTEGER, mtime_ns INTEGER, digest TEXT)")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- keys -------------------------------------------------------------------------------
    def digest(self, path: str | os.PathLike) -> str:
        """Content hash, remembered by (absolute path, size, mtime) to skip rehashing."""
        p = os.path.abspath(path)
        st = os.stat(p)
        row = self._db.execute("SELECT size, mtime_ns, digest FROM hashes WHERE path=?",
                               (p,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        d = content_hash(p)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO hashes VALUES (?,?,?,?)",
                             (p, st.st_size, st.st_mtime_ns, d))
        return d

    def _dir(self, key: str) -> Path:
        return self.root / "entries" / key[:2] / key

    def _partial(self, key: str) -> Path:
        return self._dir(key).with_name(key + ".partial")

    # -- reading ------------------------------------------------------------------------------
    def get(self, key: str) -> Entry | None:
        """The entry, or None: also for a damaged one (a part or its meta cut short, e.g.
        by a full disk or a copy), which is removed so that it is computed again."""
        d = self._dir(key)
        meta_file = d / "meta.json"
        if not meta_file.is_file():
            return None
        meta = _read_meta(meta_file)
        entry = Entry(d, meta) if meta is not None else None
        if entry is None or not entry.intact():
            shutil.rmtree(d, ignore_errors=True)
            return None
        return entry

    def __iter__(self) -> Iterator[Entry]:
        """Every whole entry (damaged ones are left out; ``get`` removes them)."""
        for meta_file in sorted((self.root / "entries").glob("*/*/meta.json")):
            if meta_file.parent.name.endswith(".partial"):
                continue
            meta = _read_meta(meta_file)
            if meta is not None and Entry(meta_file.parent, meta).intact():
                yield Entry(meta_file.parent, meta)

    # -- writing ------------------------------------------------------------------------------
    def done_parts(self, key: str) -> set[int]:
        """Parts already written by an interrupted run (reused, not recomputed)."""
        d = self._partial(key)
        if not d.is_dir():
            return set()
        done = set()
        for p in d.glob("part-*.npz"):
            if part_intact(p):
                done.add(int(p.stem.split("-")[1]))
            else:  # cut short: computed again
                p.unlink(missing_ok=True)
        return done

    def write_part(self, key: str, part: int, starts_s: np.ndarray, embeddings: np.ndarray):
        import io

        buf = io.BytesIO()
        np.savez(buf, starts=np.asarray(starts_s, dtype=np.float64),
                 embeddings=np.asarray(embeddings, dtype=np.float32))
        atomic_write_bytes(self._partial(key) / f"part-{part:05d}.npz", buf.getvalue())

    def commit(self, key: str, meta: dict) -> Entry:
        """Publish a finished entry: meta.json last, then one atomic folder rename."""
        partial = self._partial(key)
        meta = {**meta, "key": key, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
        atomic_write_bytes(partial / "meta.json", json.dumps(meta, indent=1).encode())
        final = self._dir(key)
        try:
            os.rename(partial, final)
        except OSError:
            if not (final / "meta.json").is_file():  # not a concurrent twin: a real failure
                raise
            shutil.rmtree(partial, ignore_errors=True)
        return Entry(final, meta)

    def abort(self, key: str) -> None:
        """Drop everything written for a file that failed (nothing partial is kept)."""
        shutil.rmtree(self._partial(key), ignore_errors=True)
