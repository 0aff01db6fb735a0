"""Rewrite TFLite flatbuffers with the schema's object API (no TensorFlow needed).

BirdNET's interpreter frees intermediate tensors when XNNPACK is on, so the embedding cannot
be read by tensor index. Listing the embedding tensor as an extra subgraph output keeps it
alive and gives embeddings and logits from one invoke with XNNPACK's speed. The export step
reuses this module to append a trained head after the embedding tensor.
"""

from __future__ import annotations

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
        close = [n for n in names if name.split("/")[-1].lower() in n.lower()][:5]
        hint = f" (similar: {', '.join(close)})" if close else ""
        raise KeyError(f"no tensor named {name!r} in the model{hint}") from None


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
