"""Small, exact edits and checks on exported ONNX graphs.

Written by hand because they are tiny and specific to this model: no general-purpose optimizer
removes a zero initial state (it is data-dependent in shape) or rebuilds an output head from a
contract, and the contract checks are ours.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_lstm import contract
from edge_lstm.errors import ExportError

# Ops that only move or replicate their first input: zeros in, zeros out.
_SHAPE_ONLY = {"Expand", "Slice", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Identity", "Tile", "Cast"}
_RECURRENT = {"LSTM", "DynamicQuantizeLSTM"}


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
    remove_dead(graph)
    return model


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


def _value(spec: contract.TensorSpec, batch: int | str, dtype: int = onnx.TensorProto.FLOAT) -> onnx.ValueInfoProto:
    dims = [batch if d == contract.BATCH else d for d in spec.dims]
    return helper.make_tensor_value_info(spec.name, dtype, dims)


def canonical_outputs(
    model: onnx.ModelProto, spec: contract.ModelSpec, w_out: np.ndarray, b_out: np.ndarray
) -> onnx.ModelProto:
    """Rebuild everything after the LSTM from the contract: logits = Gemm(Squeeze(Y_h), W_out, b_out),
    and for the step model h_out, c_out = the LSTM's Y_h, Y_c. What the exporter wrote there (it
    differs between torch versions) is discarded; verification proves the function is unchanged."""
    g = model.graph
    lstms = [n for n in g.node if n.op_type == "LSTM"]
    if len(lstms) != 1:
        return model  # check_contract names the problem
    lstm = lstms[0]
    step = spec.kind == contract.STEP.kind
    y_h, y_c = ("h_out", "c_out") if step else ("lstm_Y_h", "")
    del lstm.output[:]
    lstm.output.extend(["", y_h, y_c])  # Y (every step's state) is not needed by any output
    # Keep the LSTM and what feeds it; drop the exporter's head.
    position = list(g.node).index(lstm)
    del g.node[position + 1 :]
    taken = {o for node in g.node for o in node.output} | {t.name for t in g.initializer}
    head_w, head_b, axes = (_fresh(name, taken) for name in ("fc_out.weight", "fc_out.bias", "squeeze_axes"))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 20)
    if opset >= 13:
        g.initializer.append(numpy_helper.from_array(np.array([0], np.int64), axes))
        squeeze = helper.make_node("Squeeze", [y_h, axes], ["h_last"], name="head_squeeze")
    else:
        squeeze = helper.make_node("Squeeze", [y_h], ["h_last"], name="head_squeeze", axes=[0])
    g.initializer.extend(
        [
            numpy_helper.from_array(w_out.astype(np.float32), head_w),
            numpy_helper.from_array(b_out.astype(np.float32), head_b),
        ]
    )
    gemm = helper.make_node("Gemm", ["h_last", head_w, head_b], [contract.OUTPUT], name="head_gemm", transB=1)
    g.node.extend([squeeze, gemm])
    del g.output[:]
    g.output.extend(_value(t, contract.BATCH) for t in spec.outputs)
    strip_intermediate_shapes(g)
    remove_dead(g)
    return model


def add_lengths(model: onnx.ModelProto) -> onnx.ModelProto:
    """A `lengths` (batch,) int32 input fed to the LSTM's sequence_lens: Y_h is then each padded
    sequence's state after its own last real step, as PyTorch's packed sequences compute; and the
    input's time axis symbolic. Nothing between the input and the LSTM node depends on the length
    the exporter saw (the input layer is fused into the LSTM, or a MatMul over the last axis);
    verification runs the file at other lengths than that one."""
    g = model.graph
    lstm = next(n for n in g.node if n.op_type == "LSTM")
    inputs = [*lstm.input, *[""] * (5 - len(lstm.input))]
    inputs[4] = "lengths"
    del lstm.input[:]
    lstm.input.extend(inputs)
    g.input.append(_value(contract.TensorSpec("lengths", (contract.BATCH,)), contract.BATCH, onnx.TensorProto.INT32))
    time = g.input[0].type.tensor_type.shape.dim[1]
    time.Clear()
    time.dim_param = contract.TIME
    return model


def fix_batch(model: onnx.ModelProto, batch: int) -> onnx.ModelProto:
    """Fix the symbolic batch axis to `batch` in the graph's inputs and outputs (for consumers that
    need static shapes: NPU delegates, converters), and give the LSTM its zero initial state as
    constants: with a fixed batch the state's shape is known, and converters such as onnx2tf need
    the state present. Intermediate shapes are not annotated (strip_intermediate_shapes), so
    nothing else still says `batch`."""
    g = model.graph
    for value in (*g.input, *g.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param == contract.BATCH:
                d.Clear()
                d.dim_value = batch
    taken = {o for node in g.node for o in node.output} | {t.name for t in g.initializer} | {i.name for i in g.input}
    for node in g.node:
        has_state = len(node.input) > 6 and node.input[5] and node.input[6]
        if node.op_type == "LSTM" and not has_state:
            hidden = next(a.i for a in node.attribute if a.name == "hidden_size")
            zeros = np.zeros((1, batch, hidden), np.float32)
            names = [_fresh("initial_h", taken), _fresh("initial_c", taken)]
            g.initializer.extend(numpy_helper.from_array(zeros, n) for n in names)
            inputs = [*node.input, *[""] * (5 - len(node.input))][:5]  # X, W, R, B, sequence_lens
            del node.input[:]
            node.input.extend([*inputs, *names])
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
        lstms = [n for n in model.graph.node if n.op_type in _RECURRENT]
        inits = {t.name for t in model.graph.initializer}
        if len(lstms) != 1:
            problems.append(f"{len(lstms)} LSTM nodes, expected exactly one")
        elif lstms[0].op_type == "LSTM" and not all(name in inits for name in lstms[0].input[1:3]):
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
    what = "sequence classifier" if contract.META_SIZES in props else "MNIST digit classifier"
    model.doc_string = (
        f"edge-lstm {props.get(contract.META_KIND, 'classifier')} ({props.get(contract.META_VARIANT, 'fp32')}): "
        f"{what}. Input: {props.get(contract.META_LAYOUT, '')}. "
        f"Preprocessing: {props.get(contract.META_PREPROCESSING, contract.PREPROCESSING)}."
    )
