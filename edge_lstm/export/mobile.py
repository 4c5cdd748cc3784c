"""The phone-NPU variant: the recurrence unrolled into operators NNAPI, CoreML and QNN all take.

No NPU delegate runs ONNX's LSTM node (onnxruntime's usability checker: "NNAPI cannot run any
nodes in this model"), and none takes a dynamic shape. So this graph is written out by hand, from
the checkpoint's weights, with a fixed batch and only operators in the NNAPI, CoreML NeuralNetwork
and CoreML MLProgram lists of onnxruntime 1.32 (Split, Reshape, Concat, Gemm, Sigmoid, Tanh, Mul,
Add). Per time step t, with the input layer folded into the LSTM (as in the main export):

    x_t   = Reshape(Split(images)[t])                      (N, 28)
    gates = Gemm(Concat(x_t, h), [W_ih | W_hh], b)         (N, 512): one matrix product per step
    i, f, o, g = Split(gates);  i, f, o = Sigmoid(.);  g = Tanh(g)   (gate rows reordered i, f, o, g)
    c = f * c + i * g;  h = o * Tanh(c)
    logits = Gemm(h, W_out, b_out)                         after step 27

Writing ~300 nodes by hand is small and exact here; no converter produces this form from an LSTM
node (onnxruntime and onnxscript keep the node, which is what the CPU wants).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edge_lstm import contract
from edge_lstm.export.modules import fuse_input_layer
from edge_lstm.training.model import LSTMClassifier

OPSET = 17  # the newest the mobile EPs' checkers list every operator here for


def unrolled(model: LSTMClassifier, batch: int) -> onnx.ModelProto:
    """images (batch, 28, 28) -> logits (batch, 10) with no LSTM node, no dynamic shape."""
    cfg = model.config
    H, T, D = cfg.n_hidden, cfg.n_steps, cfg.n_inputs
    w_ih, b_ih = (t.numpy() for t in fuse_input_layer(model))  # (4H, 28), (4H,)
    state = model.lstm.state_dict()
    w_hh, b_hh = state["weight_hh_l0"].numpy(), state["bias_hh_l0"].numpy()
    # PyTorch's gate rows are i, f, g, o; put the three sigmoid gates first: i, f, o | g.
    order = np.concatenate([np.arange(0, 2 * H), np.arange(3 * H, 4 * H), np.arange(2 * H, 3 * H)])
    w_cat = np.concatenate([w_ih[order], w_hh[order]], axis=1).T.astype(np.float32)  # (28 + H, 4H)
    w_x = np.ascontiguousarray(w_ih[order].T, dtype=np.float32)  # (28, 4H): step 0 has h = 0
    bias = (b_ih + b_hh)[order].astype(np.float32)
    head = model.fc_out.state_dict()
    inits = [
        numpy_helper.from_array(w_cat, "w_cat"),
        numpy_helper.from_array(w_x, "w_x"),
        numpy_helper.from_array(bias, "b_gates"),
        numpy_helper.from_array(head["weight"].numpy().T.astype(np.float32), "w_out"),  # (H, 10)
        numpy_helper.from_array(head["bias"].numpy().astype(np.float32), "b_out"),
        numpy_helper.from_array(np.array([batch, D], np.int64), "row_shape"),
        numpy_helper.from_array(np.full(T, 1, np.int64), "one_row_each"),
        numpy_helper.from_array(np.array([3 * H, H], np.int64), "sigmoid_tanh"),
        numpy_helper.from_array(np.array([H, H, H], np.int64), "three_gates"),
    ]
    rows = [f"row{t}" for t in range(T)]
    nodes = [helper.make_node("Split", ["images", "one_row_each"], [f"{r}_3d" for r in rows], axis=1)]
    h = c = ""
    for t, r in enumerate(rows):
        n = f"s{t}_"
        nodes.append(helper.make_node("Reshape", [f"{r}_3d", "row_shape"], [r]))
        if t == 0:
            nodes.append(helper.make_node("Gemm", [r, "w_x", "b_gates"], [n + "gates"]))
        else:
            nodes.append(helper.make_node("Concat", [r, h], [n + "xh"], axis=1))
            nodes.append(helper.make_node("Gemm", [n + "xh", "w_cat", "b_gates"], [n + "gates"]))
        nodes += [
            helper.make_node("Split", [n + "gates", "sigmoid_tanh"], [n + "ifo_pre", n + "g_pre"], axis=1),
            helper.make_node("Sigmoid", [n + "ifo_pre"], [n + "ifo"]),
            helper.make_node("Split", [n + "ifo", "three_gates"], [n + "i", n + "f", n + "o"], axis=1),
            helper.make_node("Tanh", [n + "g_pre"], [n + "g"]),
            helper.make_node("Mul", [n + "i", n + "g"], [n + "ig" if t else n + "c"]),
        ]
        if t:
            nodes += [
                helper.make_node("Mul", [n + "f", c], [n + "fc"]),
                helper.make_node("Add", [n + "fc", n + "ig"], [n + "c"]),
            ]
        nodes += [
            helper.make_node("Tanh", [n + "c"], [n + "tanh_c"]),
            helper.make_node("Mul", [n + "o", n + "tanh_c"], [n + "h"]),
        ]
        h, c = n + "h", n + "c"
    nodes.append(helper.make_node("Gemm", [h, "w_out", "b_out"], [contract.OUTPUT]))
    for i, node in enumerate(nodes):
        node.name = f"{node.op_type.lower()}_{i}"
    graph = helper.make_graph(
        nodes,
        "edge_lstm_unrolled",
        [helper.make_tensor_value_info(contract.INPUT, TensorProto.FLOAT, [batch, T, D])],
        [helper.make_tensor_value_info(contract.OUTPUT, TensorProto.FLOAT, [batch, cfg.n_classes])],
        inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    return proto


def quantize_qdq(fp32: onnx.ModelProto, calibration: np.ndarray) -> onnx.ModelProto:
    """Static int8 in the QDQ format NPUs take: activations uint8 and weights int8, scales calibrated
    on `calibration` (uint8 training images, (K, 28, 28), K a multiple of the model's batch)."""
    import logging
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    batch = fp32.graph.input[0].type.tensor_type.shape.dim[0].dim_value

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            x = calibration.astype(np.float32) / 255
            self.feeds = iter({contract.INPUT: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch))

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
