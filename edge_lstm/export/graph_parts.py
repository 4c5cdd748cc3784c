"""Pieces of the model's ONNX graphs that graph_build.py puts together: the builder, the convolutions'
weights (batch normalisation folded in), the log scale of the inputs, and one row through a causal
front-end with its state (the step model's `front`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edge_lstm.arch import FRONT_STATE, Arch

# The step model's bookkeeping of a front-end's state (the rows seen, the pooled sum, the stride's
# phase) and the log scale of the inputs: nodes named so stay float32 in the fp16 file, where counts past
# 2,048 and long sums would round, and large inputs over a small scale overflow.
BOOKKEEPING = "front_"
BN_EPS = 1e-5  # torch.nn.BatchNorm1d's, which training/model.py uses


class GraphBuilder:
    """Nodes and initializers of a graph being written (the classifier's, the step model's, the mobile one's)."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str | None = None, **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))


def conv_weights(state: dict[str, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Convolution k's (weight (C, in, kernel), bias (C,)) float32, its batch normalisation (training's
    running statistics, PyTorch's eps) folded in where it has one: y = gamma (x - mean) / sd + beta."""
    w, b = state[f"conv.{k}.weight"].astype(np.float64), state[f"conv.{k}.bias"].astype(np.float64)
    if f"norm.{k}.weight" in state:
        scale = state[f"norm.{k}.weight"] / np.sqrt(state[f"norm.{k}.running_var"].astype(np.float64) + BN_EPS)
        w, b = w * scale[:, None, None], (b - state[f"norm.{k}.running_mean"]) * scale + state[f"norm.{k}.bias"]
    return w.astype(np.float32), b.astype(np.float32)


def read_input(g: GraphBuilder, arch: Arch, x: str) -> str:
    """The input on a log scale where the architecture says so (training/model.py's `symlog`):
    sign(x) log(1 + |x| / scale), per feature. Float32 in the fp16 file too (BOOKKEEPING): a
    current of 460 over a scale of 0.002 is past float16's range."""
    if not arch.log_scale:
        return x
    scale = g.const("log_scale", np.array(arch.log_scale, np.float32))
    g.node("Abs", [x], ["log_abs"], "front_log_abs")
    g.node("Div", ["log_abs", scale], ["log_ratio"], "front_log_ratio")
    g.node("Add", ["log_ratio", g.const("log_one", np.ones((), np.float32))], ["log_1p_in"], "front_log_1p_in")
    g.node("Log", ["log_1p_in"], ["log_1p"], "front_log_1p")
    g.node("Sign", [x], ["log_sign"], "front_log_sign")
    g.node("Mul", ["log_sign", "log_1p"], ["x_read"], "front_log_scaled")
    return "x_read"


def front_step(g: GraphBuilder, state: dict[str, np.ndarray], arch: Arch, row: str) -> tuple[str, str]:
    """One row through the causal convolutions, their past rows read from the `front` state and written
    to `front_out` (Arch.front_state); "pooled" with `pool`. Returns (the last convolution's output
    (B, C), the (B, 1) condition "the recurrent layers run at this row" ("" with stride 1: always)).
    Each convolution is the model's own Conv node on its kernel rows, so int8 treats it as the
    classifier's. With stride s the recurrent layers run at rows 0, s, 2s, ...; in between, the
    answer is the previous row's, as the classifier's on ceil(rows / s) steps."""

    def ints(name: str, v: list[int]) -> str:
        return g.const(name, np.array(v, np.int64))

    g.node("Squeeze", [FRONT_STATE, ints("front_axes", [0])], ["front_bw"], "front_squeeze")  # (B, W)
    start = 0
    for what, rows, width in arch.front_state():
        bounds = [ints(f"front_{what}_{k}", [v]) for k, v in (("start", start), ("end", start + rows * width))]
        g.node("Slice", ["front_bw", *bounds, ints(f"front_{what}_axis", [1])], [f"front_{what}"], f"front_{what}")
        start += rows * width
    zero = g.const("front_zero", np.zeros((), np.float32))
    if arch.kernel > 1:  # (B, 1, 1): the stream's first row, when it stands for the rows before it
        g.node("Equal", ["front_seen", zero], ["first"], "front_first")
        g.node("Unsqueeze", ["first", ints("front_b11", [2])], ["first3"], "front_first_b11")
    fires = ""
    if arch.stride > 1:
        stride = g.const("front_stride", np.array(arch.stride, np.float32))
        g.node("Mod", ["front_seen", stride], ["phase"], "front_phase", fmod=1)
        g.node("Equal", ["phase", zero], ["fires"], "front_fires")
        fires = "fires"
    one = g.const("front_one", np.ones((), np.float32))
    g.node("Add", ["front_seen", one], ["seen_next"], "front_seen_next")
    after, x, widths = ["seen_next"], row, (arch.features, *arch.conv)
    for k in range(len(arch.conv)):
        g.node("Unsqueeze", [x, ints(f"conv{k}_b1c", [1])], [f"conv{k}_now"], f"conv{k}_now")  # (B, 1, C)
        window = f"conv{k}_now"
        if arch.kernel > 1:  # the kernel - 1 rows before, the current row repeated on the first row
            past = ints(f"conv{k}_past_shape", [0, arch.kernel - 1, widths[k]])
            g.node("Reshape", [f"front_in{k}", past], [f"conv{k}_kept"], f"conv{k}_kept")
            g.node("Expand", [window, ints(f"conv{k}_fill", [1, arch.kernel - 1, 1])], [f"conv{k}_filled"])
            g.node("Where", ["first3", f"conv{k}_filled", f"conv{k}_kept"], [f"conv{k}_past"], f"conv{k}_past")
            g.node("Concat", [f"conv{k}_past", window], [f"conv{k}_window"], f"conv{k}_window", axis=1)
            window = f"conv{k}_window"
            shifted = [ints(f"conv{k}_from", [1]), ints(f"conv{k}_to", [arch.kernel]), ints(f"conv{k}_t", [1])]
            g.node("Slice", [window, *shifted], [f"conv{k}_shifted"], f"conv{k}_shifted")
            g.node("Reshape", [f"conv{k}_shifted", ints(f"conv{k}_flat", [0, -1])], [f"in{k}_next"])
            if fires and k > 0:  # the later convolutions' rows move with the recurrent steps only
                g.node("Where", [fires, f"in{k}_next", f"front_in{k}"], [f"in{k}_kept"], f"in{k}_kept")
                after.append(f"in{k}_kept")
            else:
                after.append(f"in{k}_next")
        g.node("Transpose", [window], [f"conv{k}_bck"], f"conv{k}_channels", perm=[0, 2, 1])  # (B, C, kernel)
        w, b = (g.const(f"conv.{k}.{n}", v) for n, v in zip(("weight", "bias"), conv_weights(state, k), strict=True))
        g.node("Conv", [f"conv{k}_bck", w, b], [f"conv{k}_out"], f"conv{k}", kernel_shape=[arch.kernel])
        g.node("Relu", [f"conv{k}_out"], [f"conv{k}_relu"], f"conv{k}_relu")
        g.node("Squeeze", [f"conv{k}_relu", ints(f"conv{k}_c_axes", [2])], [f"conv{k}_step"], f"conv{k}_step")
        x = f"conv{k}_step"
    if arch.pool:  # the running sum of the recurrent steps' channels / how many ran: floor(seen / s) + 1
        g.node("Add", ["front_pool_sum", x], ["pool_added"], "front_pool_added")
        kept = "pool_added"
        if fires:
            g.node("Where", [fires, "pool_added", "front_pool_sum"], ["pool_kept"], "front_pool_kept")
            kept = "pool_kept"
        stride = g.const("pool_stride", np.array(arch.stride, np.float32))
        g.node("Div", ["front_seen", stride], ["pool_runs"], "front_pool_runs")
        g.node("Floor", ["pool_runs"], ["pool_floor"], "front_pool_floor")
        g.node("Add", ["pool_floor", one], ["pool_count"], "front_pool_count")
        g.node("Div", [kept, "pool_count"], ["pooled"], "front_pool_divide")
        after.append(kept)
    g.node("Concat", after, ["front_next"], "front_next", axis=1)
    g.node("Unsqueeze", ["front_next", ints("front_out_axes", [0])], [f"{FRONT_STATE}_out"], "front_out")
    return x, fires
