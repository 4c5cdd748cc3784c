"""What both model.py files of a Python-backend repository share, copied beside each as
`edge_lstm_backend.py` (Triton loads a model folder on its own, so they cannot import edge-lstm).

Triton's Python stub runs the base interpreter, not a virtual environment: edge-lstm's `serve --triton`
names the environment's site-packages in EDGE_LSTM_SITE_PACKAGES, put first on sys.path here, before
numpy and onnxruntime are imported; in Triton's container, install onnxruntime into its Python instead
(pip install onnxruntime).
"""

import os
import sys

for _p in reversed(os.environ.get("EDGE_LSTM_SITE_PACKAGES", "").split(os.pathsep)):
    if _p and _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


def open_session(args: dict) -> ort.InferenceSession:
    """The version's model.onnx, one intra-op thread: parallelism comes from batching, as in edge-lstm's runner."""
    path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def array(tensor: "pb_utils.Tensor") -> np.ndarray:
    """An input as numpy through DLPack: the stub reads numpy arrays with numpy 1's struct layout, and
    under numpy 2 its as_numpy() garbles them."""
    return np.from_dlpack(tensor)


def responses(answers: list, output: str) -> list:
    """One response per request: a TritonError as the request's error, logits as its `output` tensor
    (through DLPack, not pb_utils.Tensor(name, array), which under numpy 2 takes a float32 array for an
    empty one)."""
    return [
        pb_utils.InferenceResponse(error=a)
        if isinstance(a, pb_utils.TritonError)
        else pb_utils.InferenceResponse(
            output_tensors=[pb_utils.Tensor.from_dlpack(output, np.ascontiguousarray(a, np.float32))]
        )
        for a in answers
    ]
