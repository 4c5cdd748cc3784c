"""`export --tflite-micro`: the model as TensorFlow Lite Micro runs an LSTM, for teams already on TFLM and
CMSIS-NN: one full-integer file (int8 weights and activations, int16 cell state: TFLM's "8x8_16") with
TFLM's fused UNIDIRECTIONAL_SEQUENCE_LSTM, the C array of it, and the arena it needs; checked on the
whole test set with the tflite-micro wheel (TFLM's own C++ kernels, the same outputs as TFLM + CMSIS-NN
built for a Cortex-M4: ../shared/notes/mcu.md).

How: the weights go into a tf_keras model (Dense, LSTM, Dense) and TFLite's converter quantizes it in
full-integer mode on ~500 training inputs. Why tf_keras (the legacy Keras 2): its LSTM converts to the
fused operator; Keras 3's and onnx2tf's become a WHILE loop, which TFLM does not run (and whose int8
conversion crashes). A GRU has no fused operator, so it is refused (`export --mcu` runs every cell).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import ExportError
from edge_lstm.mcu.weights import McuModel

CALIBRATION = 500  # training inputs the converter calibrates activations on
EXTRA = ("tensorflow", "tf_keras", "tflite_micro")


def installed() -> None:
    missing = [m for m in EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(
            f"--tflite-micro needs {', '.join(missing)}: pip install -e '.[tflite-micro]' "
            "(TensorFlow, tf-keras, tflite-micro)"
        )


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


def convert(model: McuModel, calibration: np.ndarray) -> bytes:
    from edge_lstm.nativelog import native_output_silenced

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_output_silenced():
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model(model))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        cases = calibration[:: max(1, len(calibration) // CALIBRATION)][:CALIBRATION].astype(np.float32)
        converter.representative_dataset = lambda: ([c[None]] for c in cases)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        data: bytes = converter.convert()
    return data


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
            raise ExportError("TFLite Micro could not run the file in a 1 MB arena")
        while hi - lo > 16:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi


def c_array(data: bytes, name: str = "edge_lstm_tflite") -> tuple[str, str]:
    """(header, source) of the file as a const array, 16-byte aligned (TFLM reads the flatbuffer in place)."""
    rows = [", ".join(f"0x{b:02x}" for b in data[i : i + 16]) for i in range(0, len(data), 16)]
    header = (
        f"/* Generated by edge-lstm export --tflite-micro. */\n#ifndef EDGE_LSTM_TFLITE_H\n#define EDGE_LSTM_TFLITE_H\n"
        f"extern const unsigned char {name}[];\nextern const unsigned int {name}_len;\n#endif\n"
    )
    body = ",\n  ".join(rows)
    source = (
        f'#include "model_data.h"\n\nalignas(16) const unsigned char {name}[] = {{\n  {body}\n}};\n'
        f"const unsigned int {name}_len = {len(data)};\n"
    )
    return header, source


def write_verified(source: Path, dest: Path, calibration: np.ndarray, check: Any) -> Path:
    """dest/: model.tflite, model_data.h/.cc, model.json; only once the file passed `check`."""
    from edge_lstm.export.mcu import keep_folder
    from edge_lstm.mcu.weights import load

    model = load(source)
    data = convert(model, calibration)
    micro = Micro(data)
    verdict = check(lambda x, lengths: micro.logits(x, lengths), "tflite-micro", "tflite-micro")
    a = model.arch
    assert a.steps is not None
    arena = smallest_arena(data, a.features, a.steps)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / "model.tflite").write_bytes(data)
        header, body = c_array(data)
        (tmp / "model_data.h").write_text(header)
        (tmp / "model_data.cc").write_text(body)
        about = {
            "file_bytes": len(data),
            "arena_bytes": arena,
            "input_quantization": {"scale": micro.in_scale, "zero_point": micro.in_zero},
            "output_quantization": {"scale": micro.out_scale, "zero_point": micro.out_zero},
            "arch": json.loads(a.to_json()),
            "source": model.source,
        }
        keep_folder(tmp, dest, about, verdict)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
