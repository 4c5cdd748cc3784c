"""Running a .tflite file in LiteRT's interpreter (XNNPACK on the CPU): what export verifies its
TFLite files with and what bench times them with. Optional: `pip install -e '.[tflite]'`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_lstm import contract
from edge_lstm.batching import in_fixed_batches
from edge_lstm.errors import ModelFileError, ProviderError
from edge_lstm.nativelog import native_output_silenced

EXTRA = "install the extra with `pip install -e '.[tflite]'` (TensorFlow, onnx2tf, LiteRT)"


def litert_logits(model: bytes | Path, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """float32 images (B, 28, 28) -> logits, through LiteRT's interpreter (one fixed batch at a time)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ProviderError(f".tflite files run in LiteRT: {EXTRA}") from None
    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    name = "the .tflite file" if isinstance(model, bytes) else str(model)
    try:
        with native_output_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            interpreter = Interpreter(num_threads=threads, **kwargs)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelFileError(f"LiteRT cannot load {name}: {str(e).splitlines()[0][:200]}") from None
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    n = int(inp["shape"][0])
    if tuple(inp["shape"][1:]) != (contract.N_STEPS, contract.N_INPUTS) or tuple(out["shape"]) != (
        n,
        contract.N_CLASSES,
    ):
        raise ModelFileError(f"{name} takes {inp['shape']} -> {out['shape']}, not (N, 28, 28) -> (N, 10)")

    def run(chunk: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(chunk, dtype=np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))  # a copy: the next invoke overwrites it

    return lambda images: in_fixed_batches(run, images, n)
