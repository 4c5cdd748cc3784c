"""Triton Python-backend model: the edge-lstm step model (1/model.onnx) under Triton's sequence batcher.

Written into REPO/edge_lstm_step/model.py by edge-lstm. Triton's sequence batcher (the "oldest"
strategy) hands `execute` requests of different sequences waiting at the same moment, with the
START, END and CORRID controls it fills in; each sequence's LSTM state (h, c) is kept here, per
correlation id, between requests. The rows of all requests run as one step call per row position
(the states stacked), as in edge-lstm's own server: a request may carry k rows of its sequence
(a (k, features) `row` tensor), answered with the logits after each.

A sequence is forgotten on its END request or when it has been idle longer than the config's
max_sequence_idle_microseconds (Triton frees its slot then but tells the model nothing).
What both model files share is common.py, copied beside this as edge_lstm_backend.py.
"""

import json
import time

# isort: off
from edge_lstm_backend import array, open_session, responses  # first: it puts the environment on sys.path
import numpy as np
import triton_python_backend_utils as pb_utils
# isort: on


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        self.session = open_session(args)
        self.hidden = int(self.session.get_inputs()[1].shape[2])  # h: (1, batch, hidden)
        config = json.loads(args["model_config"])
        self.idle_s = int(config["sequence_batching"].get("max_sequence_idle_microseconds", 60_000_000)) / 1e6
        steps = config.get("parameters", {}).get("steps", {}).get("string_value", "")
        self.max_rows = int(steps) if steps else None  # None: a model of any length
        self.states: dict = {}  # correlation id -> [h (hidden,), c (hidden,), rows so far, last seen]
        self.last_sweep = time.monotonic()

    def _forget_idle(self, now: float) -> None:
        if now - self.last_sweep < 1.0:
            return
        self.last_sweep = now
        for cid in [k for k, s in self.states.items() if now - s[3] > self.idle_s]:
            del self.states[cid]

    def execute(self, requests: list) -> list:
        now = time.monotonic()
        self._forget_idle(now)
        answers: list = [None] * len(requests)
        jobs = []  # (request index, correlation id, rows, end)
        for i, r in enumerate(requests):
            rows = array(pb_utils.get_input_tensor_by_name(r, "row"))
            start = bool(array(pb_utils.get_input_tensor_by_name(r, "START")).reshape(-1)[0])
            end = bool(array(pb_utils.get_input_tensor_by_name(r, "END")).reshape(-1)[0])
            cid = array(pb_utils.get_input_tensor_by_name(r, "CORRID")).reshape(-1)[0].item()
            if start:
                zeros = np.zeros(self.hidden, np.float32)
                self.states[cid] = [zeros, zeros, 0, now]
            state = self.states.get(cid)
            if state is None:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} is not live (never started, ended, or idle past {self.idle_s:g} s): "
                    "send its first row with sequence_start"
                )
            elif not np.isfinite(rows).all():
                answers[i] = pb_utils.TritonError("the rows hold NaN or infinity")
            elif self.max_rows is not None and state[2] + len(rows) > self.max_rows:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} would pass {self.max_rows} rows (it has {state[2]}): end it, start a new one"
                )
            else:
                jobs.append((i, cid, np.asarray(rows, np.float32), end))
        logits: dict = {i: [] for i, _, _, _ in jobs}
        position = 0
        while True:  # one step call per row position, every sequence that still has rows in it
            live = [(i, cid, rows) for i, cid, rows, _ in jobs if position < len(rows)]
            if not live:
                break
            rows = np.stack([rows[position] for _, _, rows in live])
            h = np.stack([self.states[cid][0] for _, cid, _ in live])[None]
            c = np.stack([self.states[cid][1] for _, cid, _ in live])[None]
            out, h_out, c_out = self.session.run(None, {"row": rows, "h": h, "c": c})
            for k, (i, cid, _) in enumerate(live):
                state = self.states[cid]
                state[0], state[1], state[2], state[3] = h_out[0, k].copy(), c_out[0, k].copy(), state[2] + 1, now
                logits[i].append(out[k])
            position += 1
        for i, cid, _, end in jobs:
            answers[i] = np.stack(logits[i])
            if end:
                self.states.pop(cid, None)
        return responses(answers, "logits")
