"""Triton Python-backend model: the edge-lstm step model (1/model.onnx) under Triton's sequence batcher.

Written into REPO/edge_lstm_step/model.py by edge-lstm. Triton's sequence batcher (the "oldest"
strategy) hands `execute` requests of different sequences waiting at the same moment, with the
START, END and CORRID controls it fills in; each sequence's recurrent state (the file's state inputs
after `row`: LSTM h and c, GRU h, each (layers, batch, hidden)) is kept here, per correlation id,
between requests. The rows of all requests run as one step call per row position
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
        # the state inputs after `row`, each (layers, batch, hidden): kept per sequence as (layers, hidden)
        self.state_inputs = [(i.name, int(i.shape[0]), int(i.shape[2])) for i in self.session.get_inputs()[1:]]
        config = json.loads(args["model_config"])
        self.idle_s = int(config["sequence_batching"].get("max_sequence_idle_microseconds", 60_000_000)) / 1e6
        steps = config.get("parameters", {}).get("steps", {}).get("string_value", "")
        self.max_rows = int(steps) if steps else None  # None: a model of any length
        self.states: dict = {}  # correlation id -> [[each state tensor (layers, hidden)], rows so far, last seen]
        self.last_sweep = time.monotonic()

    def _forget_idle(self, now: float) -> None:
        if now - self.last_sweep < 1.0:
            return
        self.last_sweep = now
        for cid in [k for k, s in self.states.items() if now - s[2] > self.idle_s]:
            del self.states[cid]

    def execute(self, requests: list) -> list:
        now = time.monotonic()
        self._forget_idle(now)
        answers: list = [None] * len(requests)
        parsed = []
        for r in requests:
            rows = array(pb_utils.get_input_tensor_by_name(r, "row"))
            start = bool(array(pb_utils.get_input_tensor_by_name(r, "START")).reshape(-1)[0])
            end = bool(array(pb_utils.get_input_tensor_by_name(r, "END")).reshape(-1)[0])
            cid = array(pb_utils.get_input_tensor_by_name(r, "CORRID")).reshape(-1)[0].item()
            parsed.append((rows, start, end, cid))
        # Each request holds its own sequence's state object: a client that reuses an id at once (END,
        # then START of the same id) may have both in this batch, and the old sequence's last rows must
        # run on its own state, not the new one's zeros. So every continuing request takes its state
        # before any START of this batch replaces the id's entry.
        held = {i: self.states.get(cid) for i, (_, start, _, cid) in enumerate(parsed) if not start}
        for i, (_, start, _, cid) in enumerate(parsed):
            if start:
                zeros = [np.zeros((layers, hidden), np.float32) for _, layers, hidden in self.state_inputs]
                held[i] = self.states[cid] = [zeros, 0, now]
        jobs = []  # (request index, correlation id, its state, rows, end)
        for i, (rows, _, end, cid) in enumerate(parsed):
            state = held[i]
            if state is None:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} is not live (never started, ended, or idle past {self.idle_s:g} s): "
                    "send its first row with sequence_start"
                )
            elif not np.isfinite(rows).all():
                answers[i] = pb_utils.TritonError("the rows hold NaN or infinity")
            elif self.max_rows is not None and state[1] + len(rows) > self.max_rows:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} would pass {self.max_rows} rows (it has {state[1]}): end it, start a new one"
                )
            else:
                jobs.append((i, cid, state, np.asarray(rows, np.float32), end))
        logits: dict = {job[0]: [] for job in jobs}
        position = 0
        while True:  # one step call per row position, every sequence that still has rows in it
            live = [(i, state, rows) for i, _, state, rows, _ in jobs if position < len(rows)]
            if not live:
                break
            feeds = {"row": np.stack([rows[position] for _, _, rows in live])}
            for s, (name, _, _) in enumerate(self.state_inputs):  # (layers, n, hidden)
                feeds[name] = np.stack([state[0][s] for _, state, _ in live], axis=1)
            out, *states_out = self.session.run(None, feeds)
            for k, (i, state, _) in enumerate(live):
                state[0] = [s[:, k].copy() for s in states_out]
                state[1], state[2] = state[1] + 1, now
                logits[i].append(out[k])
            position += 1
        for i, cid, state, _, end in jobs:
            answers[i] = np.stack(logits[i])
            if end and self.states.get(cid) is state:  # not a new sequence that took the id meanwhile
                del self.states[cid]
        return responses(answers, "logits")
