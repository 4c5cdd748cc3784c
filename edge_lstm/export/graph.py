"""Small, exact edits and checks on the model's ONNX graphs (graph_build.py writes them): a fixed
batch for consumers that need static shapes, the contract check, the metadata.

Written by hand because they are tiny and specific to this model, and the contract checks are ours.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edge_lstm import contract
from edge_lstm.errors import ExportError

RECURRENT = {"LSTM", "DynamicQuantizeLSTM", "GRU"}  # one node per recurrent layer, float or int8
STATE_INPUTS = {"LSTM": (5, 6), "GRU": (5,)}  # initial_h (and initial_c) among a node's inputs


def remove_dead(graph: onnx.GraphProto) -> None:
    """Drop the nodes and initializers that no graph output depends on."""
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


def strip_intermediate_shapes(graph: onnx.GraphProto) -> None:
    """Remove the exporter's value_info annotations: they name the symbolic batch, so a consumer that
    fixes the batch (or a converter that re-types tensors) would find them stale. ONNX makes them
    optional; every consumer infers intermediate shapes itself."""
    del graph.value_info[:]


def fix_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """Fix the symbolic batch axis to `batch` in the graph's inputs and outputs (for consumers that
    need static shapes: NPU delegates, converters), and give each recurrent layer its zero initial
    state as constants: with a fixed batch the state's shape is known, and converters such as onnx2tf
    need the state present. Intermediate shapes are not annotated (strip_intermediate_shapes), so
    nothing else still says `batch`."""
    g = model.graph
    for value in (*g.input, *g.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param == contract.BATCH:
                d.Clear()
                d.dim_value = batch
    taken = {o for node in g.node for o in node.output} | {t.name for t in g.initializer} | {i.name for i in g.input}
    for node in g.node:
        slots = STATE_INPUTS.get(node.op_type, ())
        inputs = [*node.input, *[""] * (max(slots, default=0) + 1 - len(node.input))]
        if not slots or all(inputs[i] for i in slots):
            continue  # not a recurrent node, or one whose state is an input (the step model)
        hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
        zeros = np.zeros((1, batch, hidden), np.float32)
        for i, kind in zip(slots, ("h", "c"), strict=False):
            if not inputs[i]:
                inputs[i] = _fresh(f"{node.name}_initial_{kind}", taken)
                g.initializer.append(numpy_helper.from_array(zeros, inputs[i]))
        del node.input[:]
        node.input.extend(inputs)
    strip_intermediate_shapes(g)
    return model


def _fresh(name: str, taken: set[str]) -> str:
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def check_contract(
    model: onnx.ModelProto, spec: contract.ModelSpec, batch: int | str = contract.BATCH, recurrent_node: bool = True
) -> None:
    """Raise ExportError listing every way the graph breaks the declared I/O contract."""
    inputs, outputs = contract.declared_in_graph(model.graph)
    problems = spec.mismatches(inputs, outputs, batch=batch)
    if recurrent_node:
        layers = [n for n in model.graph.node if n.op_type in RECURRENT]
        inits = {t.name for t in model.graph.initializer}
        if len(layers) != spec.arch.layers:
            problems.append(f"{len(layers)} recurrent nodes, expected {spec.arch.layers} ({spec.arch.describe()})")
        if any(n.op_type in ("LSTM", "GRU") and not all(i in inits for i in n.input[1:3]) for n in layers):
            problems.append("a recurrent layer's W and R are computed, not constants")
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
    arch = contract.arch_from_metadata(props)
    what = f"{arch.describe()} " + ("MNIST digit classifier" if arch.image else "sequence classifier")
    model.doc_string = (
        f"edge-lstm {props.get(contract.META_KIND, 'classifier')} ({props.get(contract.META_VARIANT, 'fp32')}): "
        f"{what}. Input: {props.get(contract.META_LAYOUT, '')}. "
        f"Preprocessing: {props.get(contract.META_PREPROCESSING, contract.PREPROCESSING)}."
    )
