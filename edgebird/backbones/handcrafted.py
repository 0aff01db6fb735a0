"""Hand-crafted features (log-mel, MFCC and spectral statistics) as an ``EmbeddingModel``.

The no-pretraining baseline of the research comparison "pretrained vs hand-crafted
features": it plugs into the same engine, store and training code as BirdNET, so the
comparison is one flag (``edgebird experiment curve --backbones handcrafted``) and differs
only in the features.

Every window is summarised on its own (no statistic is shared across a batch), so a window's
features depend only on its samples: the engine may batch windows from different files and
the store may resume half-done files without changing a number. Levels are absolute (dB
re. full scale, floored), not normalised per window, because loudness is information a
classifier may use and per-window normalisation would turn silence into amplified noise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np

from edgebird.backbones.base import EmbeddingModel, Embeddings
from edgebird.core import BIRDNET_FMAX_HZ

#: Bump whenever ``embed`` computes anything differently: it is part of the fingerprint, so
#: stored embeddings of an older version are never mixed with new ones.
FEATURES_VERSION = 1
#: The scalar spectral / temporal descriptors, in embedding order, each summarised by mean
#: and std.
SPECTRAL_NAMES = ("centroid", "bandwidth", "flatness", "rolloff", "zcr")
N_SPECTRAL = len(SPECTRAL_NAMES)
#: Windows computed at once (every librosa call is vectorised over them). Measured on one
#: core at the defaults: 9.5 ms per window for chunks of 1 to 4, 12 at 8 and 15 at 16 (the
#: ~5 MB of intermediates per window fall out of cache), so chunks stay small; this also
#: bounds the memory of a large ``embed`` call (synthetic negatives).
CHUNK_WINDOWS = 4
#: Frames ``librosa.feature.delta`` needs (its default ``width``).
DELTA_WIDTH = 9


@dataclass(frozen=True)
class HandcraftedFeatures(EmbeddingModel):
    """Per 3-s window at 48 kHz, the time mean and std of classic audio features.

    Layout of the embedding (``embedding_dim = 2 * n_mels + 4 * n_mfcc + 10``, 218 at the
    defaults), in this order:

    ======================  ==========  ==================================================
    block                   width       what
    ======================  ==========  ==================================================
    log-mel mean            n_mels      ``power_to_db`` of the mel power spectrogram
                                        (``fmin``..``fmax``), dB re. full scale, floored
                                        at ``10 * log10(amin)``
    log-mel std             n_mels
    MFCC mean               n_mfcc      DCT-II (ortho) of that log-mel
    MFCC std                n_mfcc
    delta-MFCC mean         n_mfcc      ``librosa.feature.delta`` (width 9) of the MFCCs
    delta-MFCC std          n_mfcc
    spectral                10          mean, std of: centroid (Hz), bandwidth (Hz),
                                        flatness, rolloff (Hz, ``roll_percent``),
                                        zero-crossing rate; interleaved as
                                        centroid mean, centroid std, bandwidth mean, ...
    ======================  ==========  ==================================================

    Centroid, bandwidth, flatness and rolloff are computed on the STFT bins inside
    ``fmin``..``fmax`` only, the band the mel bands see: low-frequency rumble (wind,
    traffic) would otherwise dominate them. The zero-crossing rate is of the raw samples.
    Silent frames give finite values (centroid 0, flatness 1, log-mel at the floor), so a
    zero-padded window never yields NaN or -inf.

    There is no classifier here: ``labels`` is empty and the logits are ``[n, 0]``. Frozen,
    because the parameters are part of the store key (``fingerprint``).
    """

    n_mels: int = 64
    n_mfcc: int = 20
    fmin: float = 150.0
    fmax: float = BIRDNET_FMAX_HZ
    n_fft: int = 2048
    hop_length: int = 512
    roll_percent: float = 0.85
    amin: float = 1e-10
    #: Derived per process (in ``load``), never pickled: the mel filterbank.
    _mel_basis: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    name = "handcrafted"

    def __post_init__(self) -> None:
        # Canonical types, so that fmin=150 and fmin=150.0 have one fingerprint.
        for f in fields(self):
            if f.init:
                kind = int if f.type in ("int", int) else float
                object.__setattr__(self, f.name, kind(getattr(self, f.name)))
        if self.n_mels < 1 or not 1 <= self.n_mfcc <= self.n_mels:
            raise ValueError(f"need n_mels >= 1 and 1 <= n_mfcc <= n_mels, got n_mels="
                             f"{self.n_mels}, n_mfcc={self.n_mfcc}")
        if not 0.0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= fmin < fmax <= {self.sample_rate / 2:g} Hz, got "
                             f"fmin={self.fmin:g}, fmax={self.fmax:g}")
        if self.n_fft < 16 or self.hop_length < 1:
            raise ValueError(f"need n_fft >= 16 and hop_length >= 1, got n_fft={self.n_fft}, "
                             f"hop_length={self.hop_length}")
        if self.n_frames < DELTA_WIDTH:
            raise ValueError(f"hop_length {self.hop_length} leaves {self.n_frames} frames per "
                             f"window; delta-MFCCs need at least {DELTA_WIDTH}")
        if self.band_bins() < 1:
            raise ValueError(f"no STFT bin between fmin={self.fmin:g} and fmax={self.fmax:g} "
                             f"Hz at n_fft={self.n_fft}")
        if not 0.0 < self.roll_percent < 1.0 or not self.amin > 0.0:
            raise ValueError("need 0 < roll_percent < 1 and amin > 0")

    # -- the EmbeddingModel interface -------------------------------------------------------

    @property
    def embedding_dim(self) -> int:
        return 2 * self.n_mels + 4 * self.n_mfcc + 2 * N_SPECTRAL

    @property
    def labels(self) -> list[str]:
        return []

    @property
    def fingerprint(self) -> str:
        """``handcrafted-v<version>-<hash of every parameter>``: keys the store, so any change
        of parameter or of the computation (``FEATURES_VERSION``) gets its own entries. No
        ``:`` or ``/``, so it can be part of a file name as it is."""
        params = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        params.update(sample_rate=self.sample_rate, segment_samples=self.segment_samples)
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        return f"{self.name}-v{FEATURES_VERSION}-{digest[:16]}"

    def layout(self) -> dict[str, slice]:
        """Where each block of the docstring's table sits in the embedding, by name (for
        reading feature importances, and for tests)."""
        widths = [("log_mel_mean", self.n_mels), ("log_mel_std", self.n_mels),
                  ("mfcc_mean", self.n_mfcc), ("mfcc_std", self.n_mfcc),
                  ("delta_mfcc_mean", self.n_mfcc), ("delta_mfcc_std", self.n_mfcc)]
        widths += [(f"{d}_{s}", 1) for d in SPECTRAL_NAMES for s in ("mean", "std")]
        out, at = {}, 0
        for name, width in widths:
            out[name] = slice(at, at + width)
            at += width
        return out

    @property
    def n_frames(self) -> int:
        """STFT frames per window (centred frames, as librosa's default)."""
        return 1 + self.segment_samples // self.hop_length

    def band_bins(self) -> int:
        """How many STFT bins fall inside ``fmin``..``fmax``."""
        band = self._band()
        return max(0, band.stop - band.start)

    def _band(self) -> slice:
        """The STFT bins inside ``fmin``..``fmax``, a contiguous run."""
        freqs = self._bin_freqs()
        inside = np.flatnonzero((freqs >= self.fmin) & (freqs <= self.fmax))
        return slice(int(inside[0]), int(inside[-1]) + 1) if len(inside) else slice(0, 0)

    def _bin_freqs(self) -> np.ndarray:
        return np.arange(1 + self.n_fft // 2) * (self.sample_rate / self.n_fft)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_mel_basis"] = None  # rebuilt in each process; keeps the pickle tiny
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def load(self) -> None:
        """Import librosa and build the mel filterbank now (the engine calls this in each
        worker at start-up, while the parent is still planning)."""
        if self._mel_basis is None:
            librosa = _librosa()
            basis = librosa.filters.mel(sr=self.sample_rate, n_fft=self.n_fft,
                                        n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax,
                                        htk=False, norm="slaney", dtype=np.float32)
            object.__setattr__(self, "_mel_basis", basis)

    def embed(self, batch: np.ndarray) -> Embeddings:
        """``(features [n, embedding_dim] float32, logits [n, 0] float32)`` for float32
        ``[n, segment_samples]`` windows. Non-finite samples (a damaged float file) are
        read as 0 so that the output is always finite."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self.check_windows(batch)
        if not np.isfinite(batch).all():
            batch = np.nan_to_num(batch, nan=0.0, posinf=0.0, neginf=0.0)
        self.load()
        out = np.empty((len(batch), self.embedding_dim), dtype=np.float32)
        with _one_blas_thread():
            for i in range(0, len(batch), CHUNK_WINDOWS):
                out[i:i + CHUNK_WINDOWS] = self._features(batch[i:i + CHUNK_WINDOWS])
        return Embeddings(out, np.zeros((len(batch), 0), dtype=np.float32))

    # -- the features -----------------------------------------------------------------------

    def _features(self, y: np.ndarray) -> np.ndarray:
        """Features of a chunk of windows, every librosa call vectorised over the chunk."""
        librosa = _librosa()
        sr = self.sample_rate
        mag = np.abs(librosa.stft(y, n_fft=self.n_fft, hop_length=self.hop_length,
                                  center=True, pad_mode="constant"))  # [n, bins, t]
        power = mag ** 2
        mel = self._mel_basis @ power  # one gemm per window: no result depends on the batch
        log_mel = librosa.power_to_db(mel, ref=1.0, amin=self.amin, top_db=None)
        mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=self.n_mfcc, dct_type=2, norm="ortho")
        d_mfcc = librosa.feature.delta(mfcc, width=DELTA_WIDTH, axis=-1, mode="interp")

        band = self._band()
        freqs = self._bin_freqs()[band]
        # A contiguous copy: reductions over a strided view take batch-dependent paths and
        # differ in the last bit between a window alone and in a batch.
        mag_band = np.ascontiguousarray(mag[:, band, :])
        centroid = librosa.feature.spectral_centroid(S=mag_band, sr=sr, freq=freqs)
        bandwidth = librosa.feature.spectral_bandwidth(S=mag_band, sr=sr, freq=freqs,
                                                       centroid=centroid)
        flatness = librosa.feature.spectral_flatness(S=mag_band, amin=self.amin)
        rolloff = librosa.feature.spectral_rolloff(S=mag_band, sr=sr, freq=freqs,
                                                   roll_percent=self.roll_percent)
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=self.n_fft,
                                                 hop_length=self.hop_length, center=True)
        # Each is [n, 1, t]: stacked as [n, 5, t] so mean/std interleave per descriptor.
        spectral = np.concatenate([centroid, bandwidth, flatness, rolloff, zcr], axis=1)
        spectral_stats = np.stack([_mean(spectral), _std(spectral)], axis=-1).reshape(len(y), -1)
        parts = [_mean(log_mel), _std(log_mel), _mean(mfcc), _std(mfcc), _mean(d_mfcc),
                 _std(d_mfcc), spectral_stats]
        feats = np.concatenate(parts, axis=1)
        # Belt and braces: librosa returns NaN only for inputs guarded above, but one NaN
        # would poison a whole training run.
        return np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _mean(x: np.ndarray) -> np.ndarray:
    """Time mean in float64 (float32 sums over ~300 frames lose digits the std needs)."""
    return x.mean(axis=-1, dtype=np.float64)


def _std(x: np.ndarray) -> np.ndarray:
    return x.std(axis=-1, dtype=np.float64)


@lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def _one_blas_thread():
    """BLAS held to one thread while features are computed: the mel product's last bits
    depend on BLAS's thread count, which otherwise depends on the machine's cores and on
    what ran before in the process (BirdNET's front end limits BLAS process-wide), so the
    same window would get different features in a worker, in the parent or on a cluster
    node. Costs ~3 us per call."""
    controller = _blas_controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def _librosa():
    """librosa, imported on first use: only this backbone needs it."""
    try:
        import librosa
    except ImportError as exc:
        raise ImportError("the hand-crafted backbone needs librosa: "
                          "pip install 'edgebird[experiment]'") from exc
    return librosa
