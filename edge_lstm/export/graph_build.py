"""The model's ONNX graphs, written from its weights: the classifier and the one-step model, for every
cell and depth the architecture allows (edge_lstm/arch.py).

    classifier: input (B, T, F) -> [a convolutional front-end: Transpose, then per layer Pad (edge, the
                kernel - 1 steps before) + Conv + Relu] -> Transpose -> [MatMul + Add: the input layer, unless fused] ->
                layer 1 .. L (ONNX LSTM or GRU, sequence_lens = lengths where lengths differ;
                Squeeze between layers) -> Squeeze(Y_h of the top layer) -> Gemm -> logits (B, classes)
    step:       row (B, F), state (L, B, H) per tensor -> the same layers over one step, each starting
                from its slice of the state -> logits, and the state after the step (Concat of the layers');
                a front-end's convolutions each run once on their last kernel rows, kept in `front`

Why by hand and not torch.onnx: the exporter writes each torch version's own decomposition around the
recurrent layers (a zero state computed from the input's Shape, Slice/Reshape/Mul glue between stacked
layers, the head as Gather + MatMul + Add or Gemm, with stale output shapes), which every consumer then
has to survive: quantize_dynamic, onnx2tf, the phone-NPU unrolling, Triton's state layout, C
generators. Here each layer is one standard node with constant weights, the same on every torch
version, in ~150 lines; verification against PyTorch (verify.py) proves the graph computes the model.

Gate order: PyTorch's LSTM rows are (i, f, g, o), ONNX's (i, o, f, c); PyTorch's GRU rows (r, z, n),
ONNX's (z, r, h), with linear_before_reset=1 (PyTorch applies the reset gate after the recurrent
product). Fusing the input layer into the first layer's input weights is exact for both cells: the
input enters every gate through W_i x + b_i only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.export.graph_parts import GraphBuilder, conv_weights, front_step, read_input

DEFAULT_OPSET = 20  # what torch.onnx wrote for these files before (torch 2.13's default)
MIN_OPSET = 14  # LSTM-14/GRU-14 (layout attribute), Squeeze with axes as an input (13)
GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}  # ONNX's gate blocks, as indices of PyTorch's


def _reorder(w: np.ndarray, arch: Arch) -> np.ndarray:
    """PyTorch's gate blocks (rows) -> ONNX's order."""
    h = arch.hidden
    return np.concatenate([w[k * h : (k + 1) * h] for k in GATE_ORDER[arch.cell]])


def layer_weights(state: dict[str, np.ndarray], arch: Arch, fuse: bool) -> list[tuple[np.ndarray, ...]]:
    """Per layer (W (1, G*H, in), R (1, G*H, H), B (1, 2*G*H)) in ONNX's layout, float32; with `fuse`
    the input layer folded into layer 0 (computed in float64): W_ih (W_in x + b_in) + b_ih."""
    out: list[tuple[np.ndarray, ...]] = []
    for layer in range(arch.layers):
        w_ih = state[f"rnn.weight_ih_l{layer}"].astype(np.float64)
        b_ih = state[f"rnn.bias_ih_l{layer}"].astype(np.float64)
        if layer == 0 and fuse:
            w_in, b_in = state["fc_in.weight"].astype(np.float64), state["fc_in.bias"].astype(np.float64)
            w_ih, b_ih = w_ih @ w_in, w_ih @ b_in + b_ih
        w_hh, b_hh = state[f"rnn.weight_hh_l{layer}"], state[f"rnn.bias_hh_l{layer}"]
        w = _reorder(w_ih, arch).astype(np.float32)[None]
        r = _reorder(w_hh, arch).astype(np.float32)[None]
        b = np.concatenate([_reorder(b_ih, arch), _reorder(b_hh, arch)]).astype(np.float32)[None]
        out.append((w, r, b))
    return out


def _layers(
    g: GraphBuilder,
    state: dict[str, np.ndarray],
    arch: Arch,
    fuse: bool,
    x: str,
    lengths: str,
    initial: list[str],
    named: list[str] | None = None,
) -> list[list[str]]:
    """The recurrent layers on x (T, B, in): per layer its [Y_h, (Y_c)] outputs. initial: the state
    tensors (L, B, H) to start from ([] = zeros); named: the one layer's state outputs' names."""
    if not fuse:
        g.const("fc_in.weight_t", state["fc_in.weight"].T.astype(np.float32))
        g.const("fc_in.bias", state["fc_in.bias"].astype(np.float32))
        g.node("MatMul", [x, "fc_in.weight_t"], ["fc_in_mm"], "fc_in_matmul")
        g.node("Add", ["fc_in_mm", "fc_in.bias"], ["fc_in_out"], "fc_in_add")
        x = "fc_in_out"
    n_states = len(arch.cell_states)
    outs = []
    for layer, (w, r, b) in enumerate(layer_weights(state, arch, fuse)):
        names = [g.const(f"{arch.cell}{layer}.{k}", v) for k, v in (("W", w), ("R", r), ("B", b))]
        starts = []
        for name in initial:
            if arch.layers == 1:
                starts.append(name)
                continue
            for k, v in (("start", [layer]), ("end", [layer + 1]), ("axis", [0])):
                g.const(f"{name}_l{layer}_{k}", np.array(v, np.int64))
            bounds = [f"{name}_l{layer}_{k}" for k in ("start", "end", "axis")]
            g.node("Slice", [name, *bounds], [f"{name}_l{layer}"], f"{name}_slice_l{layer}")
            starts.append(f"{name}_l{layer}")
        top = layer == arch.layers - 1
        y = "" if top else f"y{layer}"
        state_out = named if named is not None else [f"y{layer}_{s}" for s in ("h", "c")[:n_states]]
        attrs: dict[str, Any] = {"hidden_size": arch.hidden}
        if arch.cell == "gru":
            attrs["linear_before_reset"] = 1
        inputs = [x, *names, lengths, *starts]
        while inputs and not inputs[-1]:
            inputs.pop()
        g.node(arch.op, inputs, [y, *state_out], f"{arch.cell}{layer}", **attrs)
        outs.append(state_out)
        if not top:  # Y (T, 1, B, H) -> (T, B, H): the next layer's input
            axes = g.const(f"y{layer}_axes", np.array([1], np.int64))
            g.node("Squeeze", [y, axes], [f"x{layer + 1}"], f"squeeze_y{layer}")
            x = f"x{layer + 1}"
    return outs


def _head(g: GraphBuilder, state: dict[str, np.ndarray], top_h: str, pooled: bool = False) -> None:
    g.node("Squeeze", [top_h, g.const("head_axes", np.array([0], np.int64))], ["h_last"], "head_squeeze")
    w = g.const("fc_out.weight", state["fc_out.weight"].astype(np.float32))
    b = g.const("fc_out.bias", state["fc_out.bias"].astype(np.float32))
    last = "h_last"
    if pooled:  # the state beside the pooled channels, as training/model.py concatenates them
        g.node("Concat", ["h_last", "pooled"], ["head_in"], "head_concat", axis=1)
        last = "head_in"
    g.node("Gemm", [last, w, b], [contract.OUTPUT], "head_gemm", transB=1)


def _value(spec: contract.TensorSpec) -> onnx.ValueInfoProto:
    dtype = TensorProto.INT32 if spec.dtype == "int32" else TensorProto.FLOAT
    return helper.make_tensor_value_info(spec.name, dtype, list(spec.dims))


def _model(g: GraphBuilder, spec: contract.ModelSpec, opset: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        g.nodes, f"edge_lstm_{spec.kind}", [_value(t) for t in spec.inputs], [_value(t) for t in spec.outputs], g.inits
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)  # what onnxruntime 1.20, the oldest supported, reads
    return model


def _front(g: GraphBuilder, state: dict[str, np.ndarray], arch: Arch, x_in: str, lengths: str) -> tuple[str, str]:
    """The causal convolutions (training/model.py's `front`) on the input: (time-major x, lengths after
    the stride)."""
    g.node("Transpose", [x_in], ["x_bft"], "to_channels", perm=[0, 2, 1])  # (B, F, T)
    x, pads = "x_bft", g.const("conv_pads", np.array([0, 0, arch.kernel - 1, 0, 0, 0], np.int64))
    for k in range(len(arch.conv)):
        g.node("Pad", [x, pads], [f"conv{k}_padded"], f"conv{k}_pad", mode="edge")
        w, b = (g.const(f"conv.{k}.{n}", v) for n, v in zip(("weight", "bias"), conv_weights(state, k), strict=True))
        strides = [arch.stride if k == 0 else 1]
        g.node(
            "Conv", [f"conv{k}_padded", w, b], [f"conv{k}_out"], f"conv{k}", kernel_shape=[arch.kernel], strides=strides
        )
        g.node("Relu", [f"conv{k}_out"], [f"conv{k}_relu"], f"conv{k}_relu")
        x = f"conv{k}_relu"
    g.node("Transpose", [x], ["x_tbf"], "to_time_major", perm=[2, 0, 1])  # (T', B, C)
    if lengths and arch.stride > 1:  # ceil(lengths / stride): the steps the recurrent layers run
        g.node("Add", [lengths, g.const("stride_less_one", np.array(arch.stride - 1, np.int32))], ["lengths_up"])
        g.node("Div", ["lengths_up", g.const("stride", np.array(arch.stride, np.int32))], ["lengths_strided"])
        lengths = "lengths_strided"
    if arch.pool:
        _pool(g, x, lengths)
    return "x_tbf", lengths


def _pool(g: GraphBuilder, x: str, lengths: str) -> None:
    """ "pooled" (B, C): the channels of x (B, C, T') averaged over each sequence's own steps."""
    two = g.const("pool_axes", np.array([2], np.int64))
    if not lengths:
        g.node("GlobalAveragePool", [x], ["pool_mean"], "pool_mean")
        g.node("Squeeze", ["pool_mean", two], ["pooled"], "pool_squeeze")
        return
    # mask (B, 1, T'): step t < the sequence's length; the masked sum over time / the length
    g.node("Shape", [x], ["pool_shape"], "pool_shape")
    g.node("Gather", ["pool_shape", g.const("pool_time", np.array(2, np.int64))], ["pool_steps"], "pool_steps")
    zero, one = g.const("pool_zero", np.array(0, np.int64)), g.const("pool_one", np.array(1, np.int64))
    g.node("Range", [zero, "pool_steps", one], ["pool_range"], "pool_range")
    g.node("Cast", [lengths], ["pool_lengths"], "pool_lengths", to=TensorProto.INT64)
    g.node("Unsqueeze", ["pool_lengths", g.const("pool_bt", np.array([1], np.int64))], ["pool_len_b1"])
    g.node("Less", ["pool_range", "pool_len_b1"], ["pool_valid"], "pool_valid")  # (B, T')
    g.node("Cast", ["pool_valid"], ["pool_mask_bt"], "pool_mask", to=TensorProto.FLOAT)
    g.node("Unsqueeze", ["pool_mask_bt", g.const("pool_b1t", np.array([1], np.int64))], ["pool_mask"])
    g.node("Mul", [x, "pool_mask"], ["pool_masked"], "pool_masked")
    g.node("ReduceSum", ["pool_masked", two], ["pool_sum"], "pool_sum", keepdims=0)
    g.node("Cast", ["pool_len_b1"], ["pool_count"], "pool_count", to=TensorProto.FLOAT)
    g.node("Div", ["pool_sum", "pool_count"], ["pooled"], "pool_divide")


def classifier_graph(
    state: dict[str, np.ndarray], arch: Arch, fuse: bool, opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    """The full-sequence classifier (contract.classifier_spec(arch)) from the model's state dict (numpy)."""
    spec = contract.classifier_spec(arch)
    g = GraphBuilder()
    lengths = "lengths" if arch.steps is None else ""
    x_in = read_input(g, arch, arch.input_name)
    if arch.conv:
        _, lengths = _front(g, state, arch, x_in, lengths)
    else:
        g.node("Transpose", [x_in], ["x_tbf"], "to_time_major", perm=[1, 0, 2])  # (T, B, F)
    outs = _layers(g, state, arch, fuse, "x_tbf", lengths, [])
    _head(g, state, outs[-1][0], arch.pool)
    return _model(g, spec, opset)


def step_graph(state: dict[str, np.ndarray], arch: Arch, fuse: bool, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The one-step model (contract.step_spec(arch)): each layer runs one step from its slice of the
    state inputs; the state outputs are every layer's new state, stacked as the inputs are."""
    spec = contract.step_spec(arch)
    g = GraphBuilder()
    row = read_input(g, arch, "row")
    x, fires = front_step(g, state, arch, row) if arch.conv else (row, "")
    g.node("Unsqueeze", [x, g.const("row_axes", np.array([0], np.int64))], ["x_step"], "row_to_one_step")
    cells = list(arch.cell_states)
    stepped = [f"{n}_stepped" if fires else f"{n}_out" for n in cells]
    # one layer: its state outputs are the model's; several: stacked as the inputs are
    outs = _layers(g, state, arch, fuse, "x_step", "", cells, stepped if arch.layers == 1 else None)
    top = outs[-1][0]
    if arch.layers > 1:
        for k, name in enumerate(stepped):
            g.node("Concat", [o[k] for o in outs], [name], f"{name}_concat", axis=0)
    if fires:  # rows between the recurrent steps keep the state, and answer from it
        for n, new in zip(cells, stepped, strict=True):
            g.node("Where", [fires, new, n], [f"{n}_out"], f"{n}_kept")
        top = f"{cells[0]}_out"
        if arch.layers > 1:
            bounds = [
                g.const(f"top_{k}", np.array([v], np.int64))
                for k, v in (("s", arch.layers - 1), ("e", arch.layers), ("a", 0))
            ]
            g.node("Slice", [top, *bounds], ["h_top"], "h_top")
            top = "h_top"
    _head(g, state, top, arch.pool)
    return _model(g, spec, opset)
