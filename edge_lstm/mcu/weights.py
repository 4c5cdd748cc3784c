"""The model's weights for C, read from an edge-lstm ONNX file (no torch: `eval --on m4` works where
only the deployment side is installed).

The file's recurrent layers are ONNX's (gate order, two biases per gate); the input layer may be fused
into the first layer's input weights already (export's default). Fusing is exact (the input enters the
gates only through W x + b) and is chosen here when it makes fewer multiply-accumulates per step: a
Linear F -> in_units in front of gates x hidden rows costs F*in + rows*in, fused it costs rows*F.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ConfigError


@dataclass(frozen=True)
class Layer:
    w: np.ndarray  # (gates*hidden, inputs): ONNX's gate order
    r: np.ndarray  # (gates*hidden, hidden)
    bias: np.ndarray  # (gates*hidden,): LSTM: Wb + Rb; GRU: Wb + Rb for z and r, Wb only for h
    bias_rn: np.ndarray | None  # GRU: Rb of the h gate (the reset gate scales R_h h + Rb_h); LSTM: None


@dataclass(frozen=True)
class McuModel:
    arch: Arch
    source: str  # the ONNX file's name
    layers: list[Layer]
    head: tuple[np.ndarray, np.ndarray]  # (classes, hidden), (classes,)
    input_layer: tuple[np.ndarray, np.ndarray] | None  # (in_units, features), (in_units,); None: fused

    @property
    def macs_per_step(self) -> int:
        """Multiply-accumulates of one time step, without the head."""
        n = sum(x.w.size + x.r.size for x in self.layers)
        return n + (self.input_layer[0].size if self.input_layer is not None else 0)


def load(path: Path) -> McuModel:
    """An fp32 classifier or step model written by `edge-lstm export` -> its weights, ready for C."""
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load(str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such model file; export one with `edge-lstm export`") from None
    except Exception as e:  # protobuf raises several kinds for a corrupt file
        raise ConfigError(f"{path}: not an ONNX file ({type(e).__name__}); export it again") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if meta.get(contract.META_VARIANT, "fp32") != "fp32":
        raise ConfigError(
            f"{path}: the {meta[contract.META_VARIANT]} file; the C library is made from the fp32 file "
            "(export --mcu quantizes it for int8 itself)"
        )
    arch = contract.arch_from_metadata(meta)
    inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in proto.graph.initializer}
    names = [f"{arch.cell}{k}.{p}" for k in range(arch.layers) for p in "WRB"] + ["fc_out.weight", "fc_out.bias"]
    missing = [n for n in names if n not in inits]
    if missing:
        raise ConfigError(
            f"{path}: not a graph of this edge-lstm version (no {missing[0]}); export it again with `edge-lstm export`"
        )
    g, h = arch.gates * arch.hidden, arch.hidden
    layers = []
    for k in range(arch.layers):
        w, r, b = (inits[f"{arch.cell}{k}.{p}"][0] for p in "WRB")
        wb, rb = b[:g], b[g:]
        if arch.cell == "gru":
            layers.append(Layer(w, r, np.concatenate([wb[: 2 * h] + rb[: 2 * h], wb[2 * h :]]), rb[2 * h :]))
        else:
            layers.append(Layer(w, r, wb + rb, None))
    head = (inits["fc_out.weight"], inits["fc_out.bias"])
    input_layer = None
    if "fc_in.weight_t" in inits:
        w_in, b_in = inits["fc_in.weight_t"].T, inits["fc_in.bias"]
        first = layers[0]
        if first.w.shape[0] * arch.features <= w_in.size + first.w.size:  # fused is cheaper: fold it in
            layers[0] = Layer(first.w @ w_in, first.r, first.bias + first.w @ b_in, first.bias_rn)
        else:
            input_layer = (w_in, b_in)
    return McuModel(arch, Path(path).name, layers, head, input_layer)
