"""TFLite Micro's side of a model, without torch: the tf_keras model of its weights and its full-integer
conversion (run as `python -m edge_lstm.mcu.tflm SOURCE CALIBRATION OUT`, a process of its own, by
`export --tflite-micro`), and the file in the tflite-micro wheel's interpreter (TFLM's C++ kernels).

Why tf_keras (the legacy Keras 2): its LSTM converts to TFLM's fused UNIDIRECTIONAL_SEQUENCE_LSTM;
Keras 3's and onnx2tf's become a WHILE loop, which TFLM does not run (and whose int8 conversion crashes).
Why a process of its own: TensorFlow beside torch, onnxruntime and Ray in one process segfaulted in
its converter (RE2, in a saved-model step; seen in CI).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import ConfigError
from edge_lstm.mcu.weights import McuModel


def _keras_order(w: np.ndarray) -> np.ndarray:
    """ONNX's LSTM gate blocks (i, o, f, c) as rows -> Keras's (i, f, c, o) as columns."""
    i, o, f, c = np.split(w, 4, axis=0)
    return np.concatenate([i, f, c, o], axis=0).T


def keras_model(model: McuModel) -> Any:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras as keras

    a = model.arch
    inp = keras.Input((a.steps, a.features), batch_size=1, dtype="float32")
    x, weights = inp, []
    if model.input_layer is not None:
        dense = keras.layers.Dense(a.in_units)
        x = dense(x)
        weights.append((dense, [model.input_layer[0].T, model.input_layer[1]]))
    for k, layer in enumerate(model.layers):
        lstm = keras.layers.LSTM(a.hidden, return_sequences=k < a.layers - 1)
        x = lstm(x)
        weights.append((lstm, [_keras_order(layer.w), _keras_order(layer.r), _keras_order(layer.bias[:, None])[0]]))
    head = keras.layers.Dense(a.n_classes)
    out = head(x)
    weights.append((head, [model.head[0].T, model.head[1]]))
    built = keras.Model(inp, out)
    for layer, values in weights:
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    return built


def operators(data: bytes) -> list[str]:
    """The operator names a .tflite file uses, read from its flatbuffer (TFLite's schema)."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    return sorted(names.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), "CUSTOM") for c in codes)


def convert_here(source: Path, calibration: Path, out: Path) -> None:
    """The child process: the keras model of `source`, full-integer conversion, the file and its operators."""
    import tensorflow as tf

    from edge_lstm.mcu.weights import load

    cases = np.load(calibration)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model(load(source)))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([c[None]] for c in cases)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    data: bytes = converter.convert()
    ops = operators(data)
    out.write_bytes(data)
    Path(f"{out}.ops").write_text(json.dumps(ops))


class Micro:
    """The file in the tflite-micro wheel's interpreter: float inputs in, float logits out."""

    def __init__(self, data: bytes, arena: int | None = None) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.interp = runtime.Interpreter.from_bytes(data, arena_size=arena)
        q_in = self.interp.get_input_details(0)["quantization_parameters"]
        q_out = self.interp.get_output_details(0)["quantization_parameters"]
        self.in_scale, self.in_zero = float(q_in["scales"][0]), int(q_in["zero_points"][0])
        self.out_scale, self.out_zero = float(q_out["scales"][0]), int(q_out["zero_points"][0])

    def logits(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        out = []
        for case in x:
            q = np.clip(np.rint(case / self.in_scale) + self.in_zero, -128, 127).astype(np.int8)[None]
            self.interp.reset()  # the LSTM's state is a variable tensor: it would carry over from the last case
            self.interp.set_input(q, 0)
            self.interp.invoke()
            out.append((self.interp.get_output(0).astype(np.float32) - self.out_zero) * self.out_scale)
        return np.concatenate(out)


def smallest_arena(data: bytes, features: int, steps: int) -> int:
    """The smallest tensor arena TFLM runs the file in (bisection; each try is a fresh interpreter)."""
    from edge_lstm.nativelog import native_output_silenced

    def works(n: int) -> bool:
        try:
            Micro(data, n).logits(np.zeros((1, steps, features), np.float32))
            return True
        except Exception:  # tflite-micro raises RuntimeError (and prints) when the arena is too small
            return False

    lo, hi = 256, 1 << 20
    with native_output_silenced(1), native_output_silenced(2):
        if not works(hi):
            raise ConfigError("TFLite Micro could not run the file in a 1 MB arena")
        while hi - lo > 16:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi


if __name__ == "__main__":  # export/tflite_micro.convert runs this in a process of its own
    import sys

    convert_here(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
