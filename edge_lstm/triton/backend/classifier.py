"""Triton Python-backend model: the edge-lstm classifier file (1/model.onnx) run with onnxruntime.

Written into REPO/edge_lstm/model.py by edge-lstm. Triton's dynamic batcher hands `execute` every
request waiting at that moment; their inputs are concatenated into ONE onnxruntime call (the
classifier's cost is per call, not per image) and the logits split back per request.

What both model files share (the environment's path, the session, tensors through DLPack) is
common.py, copied beside this as edge_lstm_backend.py.
"""

import json

# isort: off
from edge_lstm_backend import array, open_session, responses  # first: it puts the environment on sys.path
import numpy as np
import triton_python_backend_utils as pb_utils
# isort: on


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
        return responses(answers, self.output)
