"""Small, exact edits and checks on exported ONNX graphs.

Written by hand because they are tiny and specific to this model: no general-purpose optimizer
removes a zero initial state (it is data-dependent in shape), and the contract checks are ours.
"""

from __future__ import annotations

import onnx
from onnx import numpy_helper

from edge_lstm import contract
from edge_lstm.errors import ExportError

# Ops that only move or replicate their first input: zeros in, zeros out.
_SHAPE_ONLY = {"Expand", "Slice", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Tile", "Cast"}


def _is_all_zero(name: str, producers: dict[str, onnx.NodeProto], inits: dict[str, onnx.TensorProto]) -> bool:
    if name in inits:
        return not numpy_helper.to_array(inits[name]).any()
    node = producers.get(name)
    if node is None:
        return False
    if node.op_type in _SHAPE_ONLY:
        return _is_all_zero(node.input[0], producers, inits)
    if node.op_type in ("ConstantOfShape", "Constant"):
        values = [a.t for a in node.attribute if a.name == "value"]
        return not values or not numpy_helper.to_array(values[0]).any()
    return False


def drop_zero_initial_state(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace an LSTM's computed all-zero initial_h/initial_c by the ONNX default (absent = zeros).

    The exporter builds the zero state from the input's shape (Shape, Concat, Expand, Slice) on
    every call; an absent input means the same and costs nothing.
    """
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    inits = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type != "LSTM":
            continue
        for i in (5, 6):  # initial_h, initial_c
            if len(node.input) > i and node.input[i] and _is_all_zero(node.input[i], producers, inits):
                node.input[i] = ""
    _remove_dead(graph)
    return model


def _remove_dead(graph: onnx.GraphProto) -> None:
    needed = {o.name for o in graph.output}
    keep: list[onnx.NodeProto] = []
    for node in reversed(graph.node):  # nodes are topologically sorted
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    del graph.node[:]
    graph.node.extend(keep)
    used_inits = [t for t in graph.initializer if t.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(used_inits)


def _dims(value: onnx.ValueInfoProto) -> list[str | int]:
    shape = value.type.tensor_type.shape
    return [d.dim_param or d.dim_value for d in shape.dim]


def check_contract(model: onnx.ModelProto, streaming: bool) -> None:
    """Raise ExportError listing every way the graph breaks the declared I/O contract."""
    g = model.graph
    problems: list[str] = []
    f32 = onnx.TensorProto.FLOAT
    H, B = contract.N_HIDDEN, contract.BATCH
    if streaming:
        want_in = {"row": [B, contract.N_INPUTS], "h": [1, B, H], "c": [1, B, H]}
        want_out = {"logits": [B, contract.N_CLASSES], "h_out": [1, B, H], "c_out": [1, B, H]}
    else:
        want_in = {contract.INPUT: [B, contract.N_STEPS, contract.N_INPUTS]}
        want_out = {contract.OUTPUT: [B, contract.N_CLASSES]}
    for kind, values, want in (("input", g.input, want_in), ("output", g.output, want_out)):
        got = {v.name: v for v in values}
        if list(got) != list(want):
            problems.append(f"{kind}s are {list(got)}, expected {list(want)}")
            continue
        for name, dims in want.items():
            if got[name].type.tensor_type.elem_type != f32:
                problems.append(f"{kind} {name!r} is not float32")
            if _dims(got[name]) != dims:
                problems.append(f"{kind} {name!r} has shape {_dims(got[name])}, expected {dims} (batch symbolic)")
    lstms = [n for n in g.node if n.op_type == "LSTM"]
    inits = {t.name for t in g.initializer}
    if len(lstms) != 1:
        problems.append(f"{len(lstms)} LSTM nodes, expected exactly one")
    elif not all(name in inits for name in lstms[0].input[1:3]):
        problems.append("the LSTM's W and R are computed, not constants (constant folding failed)")
    if problems:
        raise ExportError("exported graph breaks the model contract: " + "; ".join(problems))


def set_metadata(model: onnx.ModelProto, props: dict[str, str]) -> None:
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    model.producer_name = "edge-lstm"
    model.doc_string = (
        f"edge-lstm {props.get(contract.META_KIND, 'classifier')} ({props.get(contract.META_VARIANT, 'fp32')}): "
        f"MNIST digit classifier. Input: {props.get(contract.META_LAYOUT, '')}. "
        f"Preprocessing: {contract.PREPROCESSING}."
    )
