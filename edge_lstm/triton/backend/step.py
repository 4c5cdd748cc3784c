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
        # In arrival order: requests of one sequence run one after the other (one job), and where a batch
        # holds a sequence's END and then a START of the same id, the old sequence's rows run on its own
        # state and the new one's on fresh zeros. Triton does not order two sequences that share an id:
        # a START sent before the old sequence's END was answered may run beside the old one's rows, and
        # nothing here can tell whose a row then is; clients wait for the END's answer (docs/cluster.md).
        current: dict = {}  # correlation id -> the state its next request in this batch continues
        jobs: dict = {}  # id(state) -> [state, [(request index, rows, end, correlation id)], rows queued]
        for i, (rows, start, end, cid) in enumerate(parsed):
            state: list | None
            if start:
                zeros = [np.zeros((layers, hidden), np.float32) for _, layers, hidden in self.state_inputs]
                state = current[cid] = self.states[cid] = [zeros, 0, now]
            else:
                state = current[cid] if cid in current else self.states.get(cid)
            if state is None:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} is not live (never started, ended, or idle past {self.idle_s:g} s): "
                    "send its first row with sequence_start"
                )
                continue
            current[cid] = state
            job = jobs.setdefault(id(state), [state, [], state[1]])
            if not np.isfinite(rows).all():
                answers[i] = pb_utils.TritonError("the rows hold NaN or infinity")
            elif self.max_rows is not None and job[2] + len(rows) > self.max_rows:
                answers[i] = pb_utils.TritonError(
                    f"sequence {cid} would pass {self.max_rows} rows (it has {job[2]}): end it, start a new one"
                )
            else:
                job[1].append((i, np.asarray(rows, np.float32), end, cid))
                job[2] += len(rows)
                if end:
                    del current[cid]  # a later request of this id in the batch must START again
        runs = [(state, np.concatenate([r for _, r, _, _ in parts])) for state, parts, _ in jobs.values() if parts]
        logits: dict = {id(state): [] for state, _ in runs}
        position = 0
        while True:  # one step call per row position, every sequence that still has rows in it
            live = [(state, rows) for state, rows in runs if position < len(rows)]
            if not live:
                break
            feeds = {"row": np.stack([rows[position] for _, rows in live])}
            for s, (name, _, _) in enumerate(self.state_inputs):  # (layers, n, hidden)
                feeds[name] = np.stack([state[0][s] for state, _ in live], axis=1)
            out, *states_out = self.session.run(None, feeds)
            for k, (state, _) in enumerate(live):
                state[0] = [s[:, k].copy() for s in states_out]
                state[1], state[2] = state[1] + 1, now
                logits[id(state)].append(out[k])
            position += 1
        for state, parts, _ in jobs.values():
            done = 0
            for i, rows, end, cid in parts:  # each request's answer: the logits after each of its rows
                answers[i] = np.stack(logits[id(state)][done : done + len(rows)])
                done += len(rows)
                if end and self.states.get(cid) is state:  # not a new sequence that took the id meanwhile
                    del self.states[cid]
        return responses(answers, "logits")
