"""TensorFlow Lite / LiteRT files (what Android and microcontrollers run), through the ecosystem's
ONNX converter, onnx2tf, and verified in LiteRT's own interpreter (edge_lstm/litert.py). Optional:
`pip install -e '.[tflite]'`.

What the converter needs, and why the input is what it is:
- A fixed batch and the LSTM's initial state present: onnx2tf builds a Keras RNN whose
  `initial_state` must match the cell's state size; from an LSTM node without initial_h/initial_c
  (ONNX's default zeros, which the main export relies on) it passes an empty state and fails
  ("Received state_spec=ListWrapper([])"). graph.fix_batch adds both as zero constants.
- onnx2tf writes float32, float16 and (asked for) dynamic-range-quantized files; the float32 one is
  `model.tflite`, the dynamic-range one `model.int8.tflite` (int8 weights, float activations).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import onnx

from edge_lstm.errors import ExportError
from edge_lstm.nativelog import native_output_silenced

EXTRA = "install the extra with `pip install -e '.[tflite]'` (TensorFlow, onnx2tf, LiteRT)"


def converter() -> Any:
    """The onnx2tf module; ExportError naming the extra where it is not installed."""
    try:
        with native_output_silenced():  # importing onnx2tf imports TensorFlow
            import onnx2tf
    except ImportError:
        raise ExportError(f"--tflite needs onnx2tf: {EXTRA}") from None
    return onnx2tf


def convert(fixed: onnx.ModelProto) -> dict[str, bytes]:
    """A fixed-batch fp32 ONNX classifier (graph.fix_batch) -> {"tflite": ..., "int8-tflite": ...}."""
    onnx2tf = converter()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        onnx.save(fixed, str(src))
        out = Path(tmp) / "tf"
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
                native_output_silenced(),
            ):
                logging.disable(logging.WARNING)
                onnx2tf.convert(
                    input_onnx_file_path=str(src),
                    output_folder_path=str(out),
                    non_verbose=True,
                    output_dynamic_range_quantized_tflite=True,
                )
        except Exception as e:  # the converter raises anything; the message is what matters
            raise ExportError(f"onnx2tf could not convert the model: {str(e).splitlines()[0][:200]}") from None
        finally:
            logging.disable(logging.NOTSET)
        files = {"tflite": out / "model_float32.tflite", "int8-tflite": out / "model_dynamic_range_quant.tflite"}
        missing = [p.name for p in files.values() if not p.is_file()]
        if missing:
            raise ExportError(f"onnx2tf did not write {', '.join(missing)}")
        return {k: p.read_bytes() for k, p in files.items()}
