"""Rewrite TFLite flatbuffers with the schema's object API (no TensorFlow needed).

BirdNET's interpreter frees intermediate tensors when XNNPACK is on, so the embedding cannot
be read by tensor index. Listing the embedding tensor as an extra subgraph output keeps it
alive and gives embeddings and logits from one invoke with XNNPACK's speed. The export step
reuses this module to append a trained head after the embedding tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

FILE_IDENTIFIER = b"TFL3"


def read_model(buf: bytes) -> schema.ModelT:
    """Parse a .tflite flatbuffer into a mutable object tree."""
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise ValueError("not a TFLite model (the file does not carry the 'TFL3' identifier)")
    return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))


def write_model(model: schema.ModelT) -> bytes:
    """Serialise an object tree back to .tflite bytes."""
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def tensor_names(model: schema.ModelT, subgraph: int = 0) -> list[str]:
    return [t.name.decode() for t in model.subgraphs[subgraph].tensors]


def tensor_index(model: schema.ModelT, name: str, subgraph: int = 0) -> int:
    """Index of the tensor called ``name``; a clear error names close matches when absent."""
    names = tensor_names(model, subgraph)
    try:
        return names.index(name)
    except ValueError:
        raise missing_tensor(name, names) from None


def missing_tensor(name: str, names: list[str]) -> KeyError:
    """The error for a tensor name the model does not have, naming up to five similar ones
    (closest spellings, else the same last path component), since BirdNET's names are long
    and easy to mistype."""
    import difflib

    lower = {n.lower(): n for n in names}
    close = [lower[n] for n in difflib.get_close_matches(name.lower(), lower, n=5, cutoff=0.8)] \
        or [n for n in names if name.split("/")[-1].lower() in n.lower()][:5]
    hint = f" (similar: {', '.join(close)})" if close else ""
    return KeyError(f"no tensor named {name!r} in the model{hint}")


@dataclass(frozen=True)
class TensorInfo:
    """What the file says about one tensor, without its data."""

    name: str
    #: the shape signature when the file has one (-1 = sized at run time), else the shape
    shape: tuple[int, ...]
    is_float32: bool
    #: index of the operator that writes it; -1 for graph inputs and constants (weights)
    producer: int


def tensor_table(buf: bytes, subgraph: int = 0) -> list[TensorInfo]:
    """Every tensor's name, shape and producing operator, read from the flatbuffer directly:
    unlike ``read_model`` this copies none of the weights (BirdNET: 8 ms instead of 36 ms and
    no second 52 MB in memory), so it is cheap enough to run when a backbone is built."""
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise ValueError("not a TFLite model (the file does not carry the 'TFL3' identifier)")
    sg = schema.Model.GetRootAsModel(buf, 0).Subgraphs(subgraph)
    producer: dict[int, int] = {}
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        for t in op.OutputsAsNumpy() if op.OutputsLength() else ():
            producer[int(t)] = i
    table = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        shape = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        dims = tuple(int(d) for d in shape) if t.ShapeLength() or t.ShapeSignatureLength() \
            else ()
        table.append(TensorInfo(t.Name().decode(), dims, t.Type() == schema.TensorType.FLOAT32,
                                producer.get(i, -1)))
    return table


def add_outputs(buf: bytes, names: list[str], subgraph: int = 0) -> bytes:
    """Return a copy of the model in which the named tensors are also subgraph outputs.

    Existing outputs keep their order; new ones follow in the order given. Signature defs
    (BirdNET V2.4 has none) are left as they are.
    """
    model = read_model(buf)
    sg = model.subgraphs[subgraph]
    outputs = [int(i) for i in sg.outputs]
    for name in names:
        idx = tensor_index(model, name, subgraph)
        if idx not in outputs:
            outputs.append(idx)
    sg.outputs = outputs
    return write_model(model)


# -- dense heads ------------------------------------------------------------------------------
# A trained head is a stack of dense layers: (weights [in, out], bias [out], relu?). Writing
# its operators ourselves (instead of TensorFlow's converter) gives bit-for-bit the arithmetic
# of the Keras layers, needs no TensorFlow at export time, and lets the same code append the
# head after BirdNET's embedding tensor.

DenseLayer = tuple  # (weights: np.ndarray [in, out], bias: np.ndarray [out], relu: bool)


def _opcode(model: schema.ModelT, builtin: int) -> int:
    codes = model.operatorCodes or []
    for i, oc in enumerate(codes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin:
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode = builtin
    oc.deprecatedBuiltinCode = min(builtin, 127)
    oc.version = 1
    codes.append(oc)
    model.operatorCodes = codes
    return len(codes) - 1


def _buffer(model: schema.ModelT, array) -> int:
    import numpy as np

    b = schema.BufferT()
    if array is not None:
        b.data = np.frombuffer(np.ascontiguousarray(array, dtype=np.float32).tobytes(),
                               dtype=np.uint8)
    model.buffers.append(b)
    return len(model.buffers) - 1


def _tensor(model: schema.ModelT, sg: schema.SubGraphT, name: str, shape: list[int],
            array=None, batch_dynamic: bool = False) -> int:
    t = schema.TensorT()
    t.name = name.encode()
    t.type = schema.TensorType.FLOAT32
    t.shape = list(shape)
    if batch_dynamic:
        t.shapeSignature = [-1, *shape[1:]]
    t.buffer = _buffer(model, array)
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _append_dense(model: schema.ModelT, sg: schema.SubGraphT, x: int, layers: list[DenseLayer],
                  prefix: str) -> int:
    """Add FULLY_CONNECTED operators computing the layers from tensor ``x``; return the output."""
    import numpy as np

    fc = _opcode(model, schema.BuiltinOperator.FULLY_CONNECTED)
    for i, (w, b, relu) in enumerate(layers):
        w = np.asarray(w, dtype=np.float32)
        wt = _tensor(model, sg, f"{prefix}/dense_{i}/kernel", [w.shape[1], w.shape[0]], w.T)
        bt = _tensor(model, sg, f"{prefix}/dense_{i}/bias", [w.shape[1]],
                     np.asarray(b, dtype=np.float32))
        out = _tensor(model, sg, f"{prefix}/dense_{i}/out", [1, w.shape[1]],
                      batch_dynamic=True)
        op = schema.OperatorT()
        op.opcodeIndex = fc
        op.inputs = [x, wt, bt]
        op.outputs = [out]
        op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
        opts = schema.FullyConnectedOptionsT()
        opts.fusedActivationFunction = (schema.ActivationFunctionType.RELU if relu
                                        else schema.ActivationFunctionType.NONE)
        op.builtinOptions = opts
        sg.operators.append(op)
        x = out
    return x


def dense_head_model(layers: list[DenseLayer], description: str = "edgebird head") -> bytes:
    """A standalone .tflite of the head alone: [batch, in] embeddings → [batch, out] logits."""
    model = schema.ModelT()
    model.version = 3
    model.description = description.encode()
    model.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel, by convention
    model.operatorCodes = []
    sg = schema.SubGraphT()
    sg.tensors, sg.operators = [], []
    sg.name = b"main"
    n_in = layers[0][0].shape[0]
    x = _tensor(model, sg, "embedding", [1, n_in], batch_dynamic=True)
    sg.inputs = [x]
    sg.outputs = [_append_dense(model, sg, x, layers, "head")]
    model.subgraphs = [sg]
    return write_model(model)


def _prune(model: schema.ModelT, sg: schema.SubGraphT) -> None:
    """Remove operators whose outputs reach no graph output, then the tensors and buffers
    nothing uses any more (indices renumbered). In replace mode this drops BirdNET's
    1024 x 6522 output layer: about 27 MB of weights no one reads."""
    needed = set(int(t) for t in sg.outputs)
    kept = []
    for op in reversed(sg.operators):
        if any(int(t) in needed for t in op.outputs):
            kept.append(op)
            needed.update(int(t) for t in op.inputs if int(t) >= 0)
    kept.reverse()
    sg.operators = kept
    produced = {int(t) for op in kept for t in op.outputs}  # every output of a kept op
    extra = {int(t) for op in kept if op.intermediates is not None for t in op.intermediates}
    used = sorted(needed | produced | extra | set(int(t) for t in sg.inputs))
    new_index = {old: i for i, old in enumerate(used)}
    sg.tensors = [sg.tensors[i] for i in used]
    for op in sg.operators:
        op.inputs = [new_index[int(t)] if int(t) >= 0 else -1 for t in op.inputs]
        op.outputs = [new_index[int(t)] for t in op.outputs]
        if op.intermediates is not None and len(op.intermediates):
            op.intermediates = [new_index[int(t)] for t in op.intermediates]
    sg.inputs = [new_index[int(t)] for t in sg.inputs]
    sg.outputs = [new_index[int(t)] for t in sg.outputs]
    # buffers: keep those still referenced (by any subgraph's tensors or by metadata)
    refs = {t.buffer for g in model.subgraphs for t in g.tensors}
    refs |= {m.buffer for m in (model.metadata or [])}
    keep_buf = [i for i in range(len(model.buffers)) if i == 0 or i in refs]
    remap = {old: i for i, old in enumerate(keep_buf)}
    model.buffers = [model.buffers[i] for i in keep_buf]
    for g in model.subgraphs:
        for t in g.tensors:
            t.buffer = remap[t.buffer]
    for m in model.metadata or []:
        m.buffer = remap[m.buffer]
    if model.metadataBuffer is not None and len(model.metadataBuffer):
        model.metadataBuffer = [remap[int(b)] for b in model.metadataBuffer if int(b) in remap]


def append_dense_head(buf: bytes, after: str, layers: list[DenseLayer],
                      mode: str = "replace") -> bytes:
    """Append a head after tensor ``after`` of a model (BirdNET's embedding).

    ``replace``: the only output is the head's logits. ``append``: the base model's first
    output and the head's logits, concatenated along the class axis (BirdNET's 6,522 classes
    first). Either way the result has one output, as birdnetlib and BirdNET-Analyzer expect.
    """
    if mode not in ("replace", "append"):
        raise ValueError("mode must be 'replace' or 'append'")
    model = read_model(buf)
    sg = model.subgraphs[0]
    src = tensor_index(model, after)
    head_out = _append_dense(model, sg, src, layers, "custom_head")
    if mode == "replace":
        sg.outputs = [head_out]
        _prune(model, sg)  # BirdNET's own classifier layer now feeds nothing: drop it
    else:
        base_out = int(sg.outputs[0])
        n = int(sg.tensors[base_out].shape[-1]) + int(layers[-1][0].shape[1])
        cat = _tensor(model, sg, "custom_head/concat", [1, n], batch_dynamic=True)
        op = schema.OperatorT()
        op.opcodeIndex = _opcode(model, schema.BuiltinOperator.CONCATENATION)
        op.inputs = [base_out, head_out]
        op.outputs = [cat]
        op.builtinOptionsType = schema.BuiltinOptions.ConcatenationOptions
        opts = schema.ConcatenationOptionsT()
        opts.axis = 1
        op.builtinOptions = opts
        sg.operators.append(op)
        sg.outputs = [cat]
    return write_model(model)
