"""TensorFlow Lite / LiteRT files (what Android and microcontrollers run), through the ecosystem's
ONNX converter, onnx2tf, and verified in LiteRT's own interpreter. Optional: `pip install -e '.[tflite]'`.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from edge_lstm import contract
from edge_lstm.batching import in_fixed_batches
from edge_lstm.errors import ExportError
from edge_lstm.nativelog import native_output_silenced

EXTRA = "install the extra with `pip install -e '.[tflite]'` (TensorFlow, onnx2tf, LiteRT)"


def convert(fixed: onnx.ModelProto) -> dict[str, bytes]:
    """A fixed-batch fp32 ONNX classifier (graph.fix_batch) -> {"tflite": ..., "int8-tflite": ...}."""
    try:
        with native_output_silenced():  # importing onnx2tf imports TensorFlow
            import onnx2tf
    except ImportError:
        raise ExportError(f"--tflite needs onnx2tf: {EXTRA}") from None
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
                    input_onnx_file_path=str(src), output_folder_path=str(out), non_verbose=True,
                    output_dynamic_range_quantized_tflite=True,
                )  # fmt: skip
        except Exception as e:  # the converter raises anything; the message is what matters
            raise ExportError(f"onnx2tf could not convert the model: {str(e).splitlines()[0][:200]}") from None
        finally:
            logging.disable(logging.NOTSET)
        files = {"tflite": out / "model_float32.tflite", "int8-tflite": out / "model_dynamic_range_quant.tflite"}
        missing = [p.name for p in files.values() if not p.is_file()]
        if missing:
            raise ExportError(f"onnx2tf did not write {', '.join(missing)}")
        return {k: p.read_bytes() for k, p in files.items()}


def litert_logits(model: bytes | Path, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """float32 images (B, 28, 28) -> logits, through LiteRT's interpreter (one fixed batch at a time)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ExportError(f".tflite files run in LiteRT: {EXTRA}") from None
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    try:
        with native_output_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(num_threads=threads, **kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ExportError(f"LiteRT cannot load the file: {str(e).splitlines()[0][:200]}") from None
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    n = int(inp["shape"][0])
    if tuple(inp["shape"][1:]) != (contract.N_STEPS, contract.N_INPUTS) or tuple(out["shape"]) != (
        n,
        contract.N_CLASSES,
    ):
        raise ExportError(f"the .tflite file takes {inp['shape']} -> {out['shape']}, not (N, 28, 28) -> (N, 10)")

    def run(chunk: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(chunk, dtype=np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))  # a copy: the next invoke overwrites it

    return lambda images: in_fixed_batches(run, images, n)
