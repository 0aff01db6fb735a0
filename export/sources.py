"""Where audio comes from, behind one interface, and the RAM ring buffer it is captured into.

A capture thread reads the source continuously into a ``Ring``; the detector reads windows
out of it by absolute sample position. A live source never waits for the model (no gaps:
if the model falls more than the ring's length behind, the oldest audio is overwritten and
counted as an overrun); a file source is replayed "as if live", but waits for the reader so
nothing is skipped when replaying faster than real time.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

RATE = 48000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")


class SourceError(Exception):
    """The audio source cannot be used (device missing, file unreadable...)."""


class Ring:
    """A fixed-size float32 ring addressed by absolute sample index since the stream began."""

    def __init__(self, seconds: float, rate: int = RATE, blocking: bool = False):
        self.capacity = int(seconds * rate)
        self.buf = np.zeros(self.capacity, dtype=np.float32)
        self.written = 0  # absolute index one past the last sample written
        self.consumed = 0  # the reader's position: with blocking, never overwritten
        self.blocking = blocking
        self.closed = False
        self.overruns = 0
        self.cond = threading.Condition()

    def write(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        with self.cond:
            while self.blocking and not self.closed and \
                    self.written + len(x) - self.consumed > self.capacity:
                self.cond.wait(0.1)
            start = self.written % self.capacity
            first = min(len(x), self.capacity - start)
            self.buf[start:start + first] = x[:first]
            self.buf[:len(x) - first] = x[first:]
            if self.written + len(x) - self.consumed > self.capacity:
                self.overruns += 1
            self.written += len(x)
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, end: int, stop: threading.Event) -> int:
        """Block until sample ``end`` is written or the stream ended; returns ``written``."""
        with self.cond:
            while self.written < end and not self.closed and not stop.is_set():
                self.cond.wait(0.1)
            return self.written

    def read(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) (zeros where nothing was written or it was overwritten)."""
        out = np.zeros(end - start, dtype=np.float32)
        with self.cond:
            lo, hi = max(start, self.written - self.capacity), min(end, self.written)
            for i in range(lo, hi, self.capacity):
                j = min(hi, i + self.capacity)
                a = i % self.capacity
                n = min(j - i, self.capacity - a)
                out[i - start:i - start + n] = self.buf[a:a + n]
                if n < j - i:
                    out[i - start + n:j - start] = self.buf[:j - i - n]
        return out

    def release(self, upto: int) -> None:
        """The reader no longer needs samples before ``upto``."""
        with self.cond:
            self.consumed = max(self.consumed, upto)
            self.cond.notify_all()


class FileSource:
    """Recordings replayed as if live: one stream per file, in name order."""

    def __init__(self, path: str, realtime: bool = False, block: int = RATE // 2):
        p = Path(path)
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS) \
            if p.is_dir() else [p]
        if not files:
            raise SourceError(f"no recordings found in {p}")
        self.files = files
        self.realtime = realtime
        self.block = block

    def streams(self) -> Iterator[tuple[str, Iterator[np.ndarray]]]:
        for f in self.files:
            yield str(f), self._read(f)

    def _read(self, path: Path) -> Iterator[np.ndarray]:
        import soundfile as sf

        try:
            with sf.SoundFile(str(path)) as snd:
                if snd.samplerate != RATE:
                    raise SourceError(f"{path}: {snd.samplerate} Hz; the recorder needs "
                                      f"{RATE} Hz recordings: resample it first, e.g. "
                                      f"ffmpeg -i '{path.name}' -ar {RATE} "
                                      f"'{path.stem}_48k.flac' (or sox '{path.name}' "
                                      f"-r {RATE} '{path.stem}_48k.wav')")
                t0 = time.monotonic()
                done = 0
                while True:
                    x = snd.read(self.block, dtype="float32", always_2d=True)
                    if not len(x):
                        return
                    if self.realtime:
                        wait = t0 + done / RATE - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                    done += len(x)
                    yield x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        except (OSError, RuntimeError) as exc:
            raise SourceError(f"{path}: cannot read ({exc})") from None


class SoundcardSource:
    """A live sound card through the ``sounddevice`` package (PortAudio)."""

    def __init__(self, device: str = "", block: int = RATE // 10):
        try:
            import sounddevice  # noqa: F401
        except (ImportError, OSError) as exc:
            raise SourceError("the soundcard source needs the sounddevice package and "
                              f"PortAudio (sudo apt install libportaudio2): {exc}; or set "
                              "source = arecord") from None
        self.device = int(device) if device.isdigit() else (device or None)
        self.block = block

    def streams(self) -> Iterator[tuple[str, Iterator[np.ndarray]]]:
        yield "soundcard", self._read()

    def _read(self) -> Iterator[np.ndarray]:
        import queue

        import sounddevice as sd

        q: queue.Queue[np.ndarray] = queue.Queue()
        stream = sd.InputStream(samplerate=RATE, channels=1, dtype="float32",
                                device=self.device, blocksize=self.block,
                                callback=lambda data, frames, t, status: q.put(data[:, 0].copy()))
        with stream:
            while True:
                yield q.get()


class ArecordSource:
    """ALSA's ``arecord`` in a subprocess (no Python audio package needed)."""

    def __init__(self, device: str = "", block: int = RATE // 10):
        self.cmd: list[str] = ["arecord", "-q", "-f", "S16_LE", "-c", "1", "-r", str(RATE),
                               "-t", "raw"] + (["-D", device] if device else [])
        self.block = block

    def streams(self) -> Iterator[tuple[str, Iterator[np.ndarray]]]:
        yield "arecord", self._read()

    def _read(self) -> Iterator[np.ndarray]:
        try:
            proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            raise SourceError("arecord not found (sudo apt install alsa-utils)") from None
        try:
            while True:
                raw = proc.stdout.read(self.block * 2)
                if not raw:
                    err = proc.stderr.read().decode(errors="replace").strip()
                    raise SourceError(f"arecord stopped: {err or 'no data'}")
                yield np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        finally:
            proc.terminate()


def make_source(kind: str, device: str = "", input_path: str = "",
                realtime: bool = False) -> object:
    if kind == "file":
        return FileSource(input_path, realtime)
    if kind == "arecord":
        return ArecordSource(device)
    return SoundcardSource(device)


def capture(stream: Iterator[np.ndarray], ring: Ring, stop: threading.Event,
            errors: list[str]) -> threading.Thread:
    """Start the capture thread: the stream into the ring until it ends or ``stop``."""

    def run() -> None:
        try:
            for block in stream:
                if stop.is_set():
                    break
                ring.write(block)
        except SourceError as exc:
            errors.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - reported in the health file
            errors.append(f"capture failed: {type(exc).__name__}: {exc}")
        finally:
            ring.close()

    t = threading.Thread(target=run, name="capture", daemon=True)
    t.start()
    return t

