"""Triton Python-backend model: the edge-lstm classifier file (1/model.onnx) run with onnxruntime.

Written into REPO/edge_lstm/model.py by edge-lstm. Triton's dynamic batcher hands `execute` every
request waiting at that moment; their inputs are concatenated into ONE onnxruntime call (the
classifier's cost is per call, not per image) and the logits split back per request.

Triton's Python stub runs the base interpreter, not a virtual environment: edge-lstm's `serve --triton`
names the environment's site-packages in EDGE_LSTM_SITE_PACKAGES; in Triton's container, install
onnxruntime into its Python instead (pip install onnxruntime).
"""

import json
import os
import sys

for _p in reversed(os.environ.get("EDGE_LSTM_SITE_PACKAGES", "").split(os.pathsep)):
    if _p and _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


def output(name: str, values: np.ndarray) -> "pb_utils.Tensor":
    """Through DLPack, not pb_utils.Tensor(name, array): the stub reads numpy arrays with numpy 1's
    struct layout, and under numpy 2 it takes a float32 array for an empty one."""
    return pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(values, np.float32))


def array(tensor: "pb_utils.Tensor") -> np.ndarray:
    """An input as numpy through DLPack, for the same reason (as_numpy() garbles it under numpy 2)."""
    return np.from_dlpack(tensor)


def open_session(args: dict) -> ort.InferenceSession:
    """One intra-op thread: parallelism comes from batching, as in edge-lstm's own runner."""
    path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.session = open_session(args)
        config = json.loads(args["model_config"])
        self.inputs = [t["name"] for t in config["input"]]  # the images, then `lengths` for any-length models
        self.output = config["output"][0]["name"]

    def execute(self, requests: list) -> list:
        tensors = [[pb_utils.get_input_tensor_by_name(r, n) for n in self.inputs] for r in requests]
        arrays = [[array(t) if t is not None else None for t in ts] for ts in tensors]
        answers: list = [None] * len(requests)
        groups: dict = {}  # requests whose inputs share a shape run together (any-length models: per length)
        for i, a in enumerate(arrays):
            first = a[0]
            if first is None or any(x is None for x in a):
                answers[i] = pb_utils.TritonError(f"the request lacks one of the inputs {self.inputs}")
                continue
            groups.setdefault(first.shape[1:], []).append(i)
        for members in groups.values():
            feeds = {}
            for k, name in enumerate(self.inputs):
                parts = [arrays[i][k] for i in members]
                joined = np.concatenate(parts) if len(parts) > 1 else parts[0]
                feeds[name] = joined.reshape(-1) if name == "lengths" else joined
            try:
                logits = self.session.run([self.output], feeds)[0]
            except Exception as e:  # a bad input (values, lengths): the message, not the stub's traceback
                for i in members:
                    answers[i] = pb_utils.TritonError(str(e).splitlines()[0])
                continue
            start = 0
            for i in members:
                n = len(arrays[i][0])
                answers[i] = logits[start : start + n].copy()
                start += n
        return [
            pb_utils.InferenceResponse(error=a)
            if isinstance(a, pb_utils.TritonError)
            else pb_utils.InferenceResponse(output_tensors=[output(self.output, a)])
            for a in answers
        ]
