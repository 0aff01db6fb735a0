"""BirdNET V2.4's spectrogram front end, computed in numpy/scipy instead of inside the model.

Why: profiled on these machines (one thread, batch 4), BirdNET's graph spends 21 of its 30 ms
per window before the first convolution, 15 ms of them in TFLite's ``RFFT2D`` kernel (which
XNNPACK does not take: it copies every frame to doubles and back). The CNN after it takes
9 ms. Computing the same spectrogram here (about 10 ms) and running only the CNN part of the
graph makes a window about 1.5x cheaper, with the same numbers.

The same numbers: the arithmetic follows the graph op by op, in its precisions:

1. per window, ``y = ((x - min) / (max - min + 1e-6) - 0.5) * 2`` in float32;
2. two STFTs: frames of 2048 samples every 278 and of 1024 every 280 (no padding: 511 frames
   each), times the model's Hann windows, in float32;
3. the real part of the FFT (the graph ``CAST``s complex to float, which keeps the real part).
   TFLite's RFFT2D runs in double precision and rounds to float32; so does this (scipy's
   pocketfft in float64), which is what makes the result match: a float32 FFT or a DFT matrix
   differs from it by rounding that BirdNET's magnitude compression (``x ** 0.23`` near 0)
   amplifies to 1e-2 in the logits;
4. the mel filter banks (the graph's ``FULLY_CONNECTED`` weights), squared, raised to the
   model's learned exponents, mel axis reversed, then the two stacked and batch-normalised
   with the model's constants.

Every constant that is an array (windows, filter banks, exponents, batch norm) is read from
the model file; the framing and normalisation constants are BirdNET V2.4's. ``split`` checks
the result against the whole graph on test signals before it is used (embeddings within
``EMB_TOL``), and gives nothing for a model it does not recognise, which then runs whole.
Measured on real recordings: logits within 5e-5, embeddings within 5e-6 of the whole model
(about what XNNPACK itself changes against TFLite's plain kernels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgebird.backbones.birdnet import graph as tflite_graph

#: The tensor the front end produces and the CNN starts from (BirdNET V2.4's names).
SPECTROGRAM_TENSOR = "model/BNORM_SPEC_NOQUANT/FusedBatchNormV33"
#: frame length -> frame step of BirdNET V2.4's two STFTs
FRAME_STEPS = {2048: 278, 1024: 280}
#: Largest difference to the whole graph accepted by ``split`` (embeddings; values up to ~2).
EMB_TOL = 1e-4

_CONV_2D = 3
_FULLY_CONNECTED = 9
_MUL = 18
_ADD = 0
_POW = 78


@dataclass(frozen=True)
class MelBranch:
    window: np.ndarray  # [L] float32
    filters: np.ndarray  # [L/2 + 1, mels] float32 (the FC weights, transposed)
    exponent: np.float32
    step: int


@dataclass(frozen=True)
class FrontEnd:
    """Audio ``[n, 144000]`` -> the CNN's input ``[n, 96, 511, 2]``, as BirdNET computes it."""

    branches: tuple[MelBranch, ...]
    bn_scale: np.ndarray  # [2]
    bn_shift: np.ndarray  # [2]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        import scipy.fft

        x = np.asarray(audio, dtype=np.float32)
        y = x - x.min(axis=1, keepdims=True)
        y /= y.max(axis=1, keepdims=True) + np.float32(1e-6)
        y -= np.float32(0.5)
        y *= np.float32(2.0)
        specs = []
        for b in self.branches:
            n = len(b.window)
            frames = np.lib.stride_tricks.sliding_window_view(y, n, axis=1)[:, ::b.step]
            frames = frames * b.window  # float32, as the graph's MUL
            real = scipy.fft.rfft(frames.astype(np.float64), axis=-1, workers=1).real
            s = real.astype(np.float32) @ b.filters  # [batch, frames, mels]
            np.multiply(s, s, out=s)
            np.power(s, b.exponent, out=s)
            specs.append(s[:, :, ::-1].transpose(0, 2, 1))  # [batch, mels, frames]
        out = np.stack(specs, axis=3)
        out *= self.bn_scale
        out += self.bn_shift
        return out


def _const(model, sg, index: int) -> np.ndarray | None:
    t = sg.tensors[index]
    data = model.buffers[t.buffer].data
    if data is None or t.type != 0:  # float32 constants only
        return None
    return np.frombuffer(bytes(data), dtype=np.float32).reshape(t.shape).copy()


def _name(t) -> str:
    return t.name.decode() if isinstance(t.name, bytes) else str(t.name)


def parse(buf: bytes) -> tuple[FrontEnd, bytes] | None:
    """The front end's constants and the CNN part of the model (input: the spectrogram), or
    None when the model does not have BirdNET V2.4's front end."""
    model = tflite_graph.read_model(buf)
    sg = model.subgraphs[0]
    names = [_name(t) for t in sg.tensors]
    if SPECTROGRAM_TENSOR not in names:
        return None
    spec = names.index(SPECTROGRAM_TENSOR)
    code = [model.operatorCodes[op.opcodeIndex].builtinCode for op in sg.operators]
    producer = next((i for i, op in enumerate(sg.operators) if spec in op.outputs), None)
    if producer is None:
        return None
    front_ops = range(producer + 1)
    front_tensors = {int(t) for i in front_ops for t in sg.operators[i].outputs}
    if any(int(t) in front_tensors for t in sg.outputs):
        return None  # an output inside the front end (a layer asked for): the CNN has not got it
    branches = []
    for tag in ("MEL_SPEC1", "MEL_SPEC2"):
        def find(builtin: int, shape_len: int | None = None, tag: str = tag):
            for i in front_ops:
                op = sg.operators[i]
                if code[i] != builtin or not names[op.outputs[0]].startswith(f"model/{tag}/"):
                    continue
                for t in op.inputs:
                    c = _const(model, sg, int(t)) if int(t) >= 0 else None
                    if c is not None and (shape_len is None or c.ndim == shape_len):
                        return c
            return None

        window, filters, exponent = find(_MUL, 1), find(_FULLY_CONNECTED, 2), find(_POW, 0)
        if window is None or filters is None or exponent is None:
            return None
        step = FRAME_STEPS.get(len(window))
        if step is None or filters.shape[1] != len(window) // 2 + 1:
            return None
        branches.append(MelBranch(window, np.ascontiguousarray(filters.T), np.float32(exponent),
                                  step))
    scale = shift = None
    for i in (producer - 1, producer):
        op = sg.operators[i]
        consts = (_const(model, sg, int(t)) for t in op.inputs if int(t) >= 0)
        c = next((v for v in consts if v is not None), None)
        if code[i] == _MUL:
            scale = c
        elif code[i] == _ADD:
            shift = c
    if scale is None or shift is None:
        return None
    first_cnn_op = producer + 1
    if not any(code[i] == _CONV_2D for i in range(first_cnn_op, len(code))):
        return None
    sg.operators = sg.operators[first_cnn_op:]
    sg.inputs = [spec]
    t = sg.tensors[spec]
    mels = branches[0].filters.shape[1]
    frames = (144_000 - len(branches[0].window)) // branches[0].step + 1
    t.shape = np.array([1, mels, frames, len(branches)], dtype=np.int32)
    t.shapeSignature = np.array([-1, mels, frames, len(branches)], dtype=np.int32)
    tflite_graph._prune(model, sg)
    return FrontEnd(tuple(branches), scale, shift), tflite_graph.write_model(model)


def test_signals(n: int = 4, samples: int = 144_000) -> np.ndarray:
    """Chirps, tones, noise and near-silence: what the check in ``split`` runs."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / 48_000
    x = [0.3 * np.sin(2 * np.pi * (500 + 2000 * t) * t),
         0.05 * rng.standard_normal(samples),
         0.2 * np.sin(2 * np.pi * 3000 * t) + 0.01 * rng.standard_normal(samples),
         1e-4 * rng.standard_normal(samples)]
    return np.stack([x[i % len(x)] for i in range(n)]).astype(np.float32)


def save(fe: FrontEnd, path) -> None:
    """The constants as an ``.npz`` (small: windows, filter banks, exponents, batch norm)."""
    import io

    from edgebird.core.files import atomic_write_bytes

    arrays = {"bn_scale": fe.bn_scale, "bn_shift": fe.bn_shift}
    for i, b in enumerate(fe.branches):
        arrays.update({f"window{i}": b.window, f"filters{i}": b.filters,
                       f"exponent{i}": np.array(b.exponent), f"step{i}": np.array(b.step)})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load(path) -> FrontEnd:
    with np.load(path) as z:
        n = sum(1 for k in z.files if k.startswith("window"))
        branches = tuple(MelBranch(z[f"window{i}"], z[f"filters{i}"],
                                   np.float32(z[f"exponent{i}"]), int(z[f"step{i}"]))
                         for i in range(n))
        return FrontEnd(branches, z["bn_scale"], z["bn_shift"])


def max_difference(whole: bytes, fe: FrontEnd, cnn: bytes, batch: int = 4) -> dict[str, float]:
    """Largest absolute difference, per output name, between the whole graph and front end +
    CNN on ``test_signals`` (both with XNNPACK, as they run)."""
    return {k: d for k, (d, _) in compare(whole, fe, cnn, batch).items()}


def compare(whole: bytes, fe: FrontEnd, cnn: bytes,
            batch: int = 4) -> dict[str, tuple[float, float]]:
    """Per output name: (largest absolute difference between the whole graph and front end +
    CNN, largest absolute value of the whole graph's output), on ``test_signals``. The scale
    is there because intermediate layers made outputs (``BirdNET(layers=...)``) reach values
    of ~50, and float32 rounding grows with the values."""
    from edgebird.core.runtime import make_interpreter

    x = test_signals(batch)
    results = []
    for content, data in ((whole, x), (cnn, fe(x))):
        it = make_interpreter(model_content=content, num_threads=1)
        inp = it.get_input_details()[0]["index"]
        it.resize_tensor_input(inp, list(data.shape))
        it.allocate_tensors()
        it.set_tensor(inp, data)
        it.invoke()
        results.append({d["name"]: it.get_tensor(d["index"]).copy()
                        for d in it.get_output_details()})
    a, b = results
    if a.keys() != b.keys():
        return {"outputs differ": (float("inf"), 0.0)}
    return {k: (float(np.max(np.abs(a[k] - b[k]))), float(np.max(np.abs(a[k])))) for k in a}
