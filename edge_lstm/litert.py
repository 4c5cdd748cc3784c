"""Running a .tflite file in LiteRT's interpreter (XNNPACK on the CPU): what export verifies its
TFLite files with and what bench times them with. Optional: `pip install -e '.[tflite]'`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.batching import in_fixed_batches
from edge_lstm.errors import ModelFileError, ProviderError
from edge_lstm.nativelog import native_output_silenced

EXTRA = "install the extra with `pip install -e '.[tflite]'` (TensorFlow, onnx2tf, LiteRT)"


def litert_logits(
    model: bytes | Path, threads: int = 1, arch: Arch = contract.MNIST
) -> Callable[[np.ndarray], np.ndarray]:
    """float32 inputs (B, steps, features) -> logits (B, classes), through LiteRT's interpreter (one
    fixed batch at a time); the file must take the shapes of `arch` (MNIST's: (N, 28, 28) -> (N, 10))."""
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
    want = ((arch.steps, arch.features), (n, arch.n_classes))
    if (tuple(inp["shape"][1:]), tuple(out["shape"])) != want:
        shapes = f"(N, {arch.steps}, {arch.features}) -> (N, {arch.n_classes})"
        raise ModelFileError(f"{name} takes {inp['shape']} -> {out['shape']}, not {shapes}")

    def run(chunk: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(chunk, dtype=np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(out["index"]))  # a copy: the next invoke overwrites it

    return lambda images: in_fixed_batches(run, images, n)
