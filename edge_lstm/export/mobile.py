"""The phone-NPU variant: the recurrence unrolled into operators NNAPI, CoreML and QNN all take.

No NPU delegate runs ONNX's LSTM or GRU node (onnxruntime's usability checker: "NNAPI cannot run any
nodes in this model"), and none takes a dynamic shape. So this graph is written out by hand, from
the checkpoint's weights, with a fixed batch and steps and only operators in the NNAPI, CoreML
NeuralNetwork and CoreML MLProgram lists of onnxruntime 1.32 (Split, Reshape, Concat, Gemm, Sigmoid,
Tanh, Mul, Add, Sub). Per time step t and layer l (x: the row, or the layer below's h), with the input
layer folded into the first layer (as in the main export):

    LSTM: gates = Gemm(Concat(x, h), [W_ih | W_hh], b)      one matrix product per step and layer
          i, f, o = Sigmoid(.), g = Tanh(.);  c = f * c + i * g;  h = o * Tanh(c)
    GRU:  gi = Gemm(x, W_ih, b_ih);  gh = Gemm(h, W_hh, b_hh)
          r, z = Sigmoid(gi_rz + gh_rz);  n = Tanh(gi_n + r * gh_n);  h = n + z * (h - n)
    logits = Gemm(h of the top layer, W_out, b_out)          after the last step

Writing a few hundred nodes by hand is small and exact here; no converter produces this form from a
recurrent node (onnxruntime and onnxscript keep the node, which is what the CPU wants).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.export.graph_parts import GraphBuilder

OPSET = 17  # the newest the mobile EPs' checkers list every operator here for


def _layer_input_weights(state: dict[str, np.ndarray], layer: int) -> tuple[np.ndarray, np.ndarray]:
    """(W_ih, b_ih) of a layer; the first with the input layer folded in (float64, then float32)."""
    w_ih, b_ih = state[f"rnn.weight_ih_l{layer}"].astype(np.float64), state[f"rnn.bias_ih_l{layer}"].astype(np.float64)
    if layer == 0:
        w_in, b_in = state["fc_in.weight"].astype(np.float64), state["fc_in.bias"].astype(np.float64)
        w_ih, b_ih = w_ih @ w_in, w_ih @ b_in + b_ih
    return w_ih.astype(np.float32), b_ih.astype(np.float32)


def _lstm_layer(g: GraphBuilder, state: dict[str, np.ndarray], arch: Arch, layer: int, xs: list[str]) -> list[str]:
    """The unrolled LSTM layer over inputs xs (one (N, in) tensor per step); its h per step."""
    h_units, p = arch.hidden, f"l{layer}_"
    w_ih, b_ih = _layer_input_weights(state, layer)
    w_hh, b_hh = state[f"rnn.weight_hh_l{layer}"], state[f"rnn.bias_hh_l{layer}"]
    # PyTorch's gate rows are i, f, g, o; put the three sigmoid gates first: i, f, o | g.
    order = np.concatenate(
        [np.arange(0, 2 * h_units), np.arange(3 * h_units, 4 * h_units), np.arange(2 * h_units, 3 * h_units)]
    )
    w_cat = g.const(p + "w_cat", np.concatenate([w_ih[order], w_hh[order]], axis=1).T.astype(np.float32))
    w_x = g.const(p + "w_x", w_ih[order].T.astype(np.float32))  # step 0 has h = 0
    bias = g.const(p + "b_gates", (b_ih + b_hh)[order].astype(np.float32))
    split_gates = g.const(p + "sigmoid_tanh", np.array([3 * h_units, h_units], np.int64))
    three = g.const(p + "three_gates", np.array([h_units] * 3, np.int64))
    hs: list[str] = []
    h = c = ""
    for t, x in enumerate(xs):
        n = f"{p}s{t}_"
        if t == 0:
            g.node("Gemm", [x, w_x, bias], [n + "gates"])
        else:
            g.node("Concat", [x, h], [n + "xh"], axis=1)
            g.node("Gemm", [n + "xh", w_cat, bias], [n + "gates"])
        g.node("Split", [n + "gates", split_gates], [n + "ifo_pre", n + "g_pre"], axis=1)
        g.node("Sigmoid", [n + "ifo_pre"], [n + "ifo"])
        g.node("Split", [n + "ifo", three], [n + "i", n + "f", n + "o"], axis=1)
        g.node("Tanh", [n + "g_pre"], [n + "g"])
        g.node("Mul", [n + "i", n + "g"], [n + "ig" if t else n + "c"])
        if t:
            g.node("Mul", [n + "f", c], [n + "fc"])
            g.node("Add", [n + "fc", n + "ig"], [n + "c"])
        g.node("Tanh", [n + "c"], [n + "tanh_c"])
        g.node("Mul", [n + "o", n + "tanh_c"], [n + "h"])
        h, c = n + "h", n + "c"
        hs.append(h)
    return hs


def _gru_layer(g: GraphBuilder, state: dict[str, np.ndarray], arch: Arch, layer: int, xs: list[str]) -> list[str]:
    """The unrolled GRU layer (PyTorch's: the reset gate after the recurrent product); its h per step."""
    h_units, p = arch.hidden, f"l{layer}_"
    w_ih, b_ih = _layer_input_weights(state, layer)
    w_x, b_x = g.const(p + "w_ih", w_ih.T.copy()), g.const(p + "b_ih", b_ih)
    w_h = g.const(p + "w_hh", state[f"rnn.weight_hh_l{layer}"].T.astype(np.float32))
    rz_n = g.const(p + "rz_n", np.array([2 * h_units, h_units], np.int64))
    r_z = g.const(p + "r_z", np.array([h_units, h_units], np.int64))
    # at step 0 h = 0: the recurrent products are the recurrent bias's parts
    bias_hh = state[f"rnn.bias_hh_l{layer}"].astype(np.float32)
    b_hh = g.const(p + "b_hh", bias_hh)
    bh_rz, bh_n = g.const(p + "bh_rz", bias_hh[: 2 * h_units]), g.const(p + "bh_n", bias_hh[2 * h_units :])
    hs: list[str] = []
    h = ""
    for t, x in enumerate(xs):
        n = f"{p}s{t}_"
        g.node("Gemm", [x, w_x, b_x], [n + "gi"])
        g.node("Split", [n + "gi", rz_n], [n + "gi_rz", n + "gi_n"], axis=1)
        gh_rz, gh_n = bh_rz, bh_n
        if t > 0:
            g.node("Gemm", [h, w_h, b_hh], [n + "gh"])
            g.node("Split", [n + "gh", rz_n], [n + "gh_rz", n + "gh_n"], axis=1)
            gh_rz, gh_n = n + "gh_rz", n + "gh_n"
        g.node("Add", [n + "gi_rz", gh_rz], [n + "rz_pre"])
        g.node("Sigmoid", [n + "rz_pre"], [n + "rz"])
        g.node("Split", [n + "rz", r_z], [n + "r", n + "z"], axis=1)
        g.node("Mul", [n + "r", gh_n], [n + "r_gh"])
        g.node("Add", [n + "gi_n", n + "r_gh"], [n + "n_pre"])
        g.node("Tanh", [n + "n_pre"], [n + "n"])
        if t == 0:  # h' = n + z * (0 - n) = n - z * n
            g.node("Mul", [n + "z", n + "n"], [n + "zn"])
            g.node("Sub", [n + "n", n + "zn"], [n + "h"])
        else:
            g.node("Sub", [h, n + "n"], [n + "h_minus_n"])
            g.node("Mul", [n + "z", n + "h_minus_n"], [n + "z_diff"])
            g.node("Add", [n + "n", n + "z_diff"], [n + "h"])
        h = n + "h"
        hs.append(h)
    return hs


def unrolled(state: dict[str, np.ndarray], arch: Arch, batch: int) -> onnx.ModelProto:
    """input (batch, steps, features) -> logits (batch, classes) with no recurrent node, no dynamic shape."""
    if arch.steps is None:
        raise ValueError("the unrolled graph needs a fixed number of steps")
    steps, features = arch.steps, arch.features
    g = GraphBuilder()
    row_shape = g.const("row_shape", np.array([batch, features], np.int64))
    one_each = g.const("one_row_each", np.full(steps, 1, np.int64))
    xs = [f"row{t}" for t in range(steps)]
    g.node("Split", [arch.input_name, one_each], [f"{r}_3d" for r in xs], axis=1)
    for r in xs:
        g.node("Reshape", [f"{r}_3d", row_shape], [r])
    layer_fn = _lstm_layer if arch.cell == "lstm" else _gru_layer
    for layer in range(arch.layers):
        xs = layer_fn(g, state, arch, layer, xs)
    w_out = g.const("w_out", state["fc_out.weight"].T.astype(np.float32))  # (H, classes)
    b_out = g.const("b_out", state["fc_out.bias"].astype(np.float32))
    g.node("Gemm", [xs[-1], w_out, b_out], [contract.OUTPUT])
    for i, node in enumerate(g.nodes):
        node.name = f"{node.op_type.lower()}_{i}"
    graph = helper.make_graph(
        g.nodes,
        "edge_lstm_unrolled",
        [helper.make_tensor_value_info(arch.input_name, TensorProto.FLOAT, [batch, steps, features])],
        [helper.make_tensor_value_info(contract.OUTPUT, TensorProto.FLOAT, [batch, arch.n_classes])],
        g.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def quantize_qdq(fp32: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """Static int8 in the QDQ format NPUs take: activations uint8 and weights int8, scales calibrated
    on `calibration` (float32 model inputs (K, steps, features), K a multiple of the model's batch)."""
    import logging
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batch = fp32.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    name = fp32.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            x = calibration.astype(np.float32)
            self.feeds = iter({name: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static logs a pre-processing hint meant for CNNs
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "qdq.onnx"
            onnx.save(fp32, str(src))
            quantize_static(
                str(src),
                str(dst),
                Reader(),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=False,
            )
            return onnx.load(str(dst))
    finally:
        root.setLevel(level)
