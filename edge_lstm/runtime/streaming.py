"""`StreamingClassifier`: the one-step model with its state, for rows that arrive one at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.errors import InputError
from edge_lstm.runtime.device import graph_runner
from edge_lstm.runtime.inputs import softmax, to_input
from edge_lstm.runtime.session import SessionConfig, open_model


class StreamingClassifier:
    """Push rows as they arrive, read the logits so far.

    Holds `batch` independent streams: the state tensors of the file's cell (LSTM h and c, GRU h), each
    (layers, batch, hidden), in `state`; `reset()` starts over. On cuda with CUDA graphs, one graph per
    batch size replays each step (the state round-trips through the host, a few KB per stream, a copy
    far below a kernel launch's cost).
    """

    def __init__(
        self, model: Path | str | bytes, batch: int = 1, config: SessionConfig | None = None, **kwargs: Any
    ) -> None:
        self.config = config or SessionConfig(**kwargs)
        opened = open_model(model, self.config, want=contract.STEP)
        self.spec, self.arch = opened.spec, opened.spec.arch  # from the file
        self.session, self.name, self.placement = opened.session, opened.name, opened.placement
        self.provider, self.metadata = opened.provider, opened.metadata
        self.fixed_batch = opened.fixed_batch
        self.graph_runner, self.cuda_graph, self.cuda_graph_reason = graph_runner(opened, self.config)
        self.reset(batch)

    def reset(self, batch: int | None = None) -> None:
        """Forget everything seen; optionally change the number of streams."""
        if batch is not None:
            if batch < 1:
                raise InputError(f"batch must be >= 1, got {batch}")
            if self.fixed_batch is not None and batch != self.fixed_batch:
                raise InputError(
                    f"{self.name} was exported for {self.fixed_batch} stream(s); use batch={self.fixed_batch}"
                )
            self.batch = batch
        self.state = self.arch.zero_state(self.batch)
        self.steps = 0
        self.last_logits: np.ndarray | None = None

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Feed one row per stream ((batch, 28) or (28,) for one stream); return logits (batch, 10) so far.
        (A model of own sequences: one step of F features per stream, as many steps as they have.)"""
        x = to_input(rows, rank=2, arch=self.arch)
        if x.shape[0] != self.batch:
            raise InputError(
                f"expected {self.batch} rows (one per stream), got {x.shape[0]}; reset(batch=...) to change"
            )
        if self.arch.steps is not None and self.steps >= self.arch.steps:
            what = "image" if self.arch.image else "sequence"
            raise InputError(f"all {self.arch.steps} rows were pushed already; call reset() for the next {what}")
        logits, self.state = self.step(x, self.state)
        self.steps += 1
        self.last_logits = logits
        return logits

    def step(self, rows: np.ndarray, state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """One time step for n streams whose state the caller keeps: rows (n, features) float32 (MNIST:
        in [0, 1]), the state tensors (layers, n, hidden) each -> (logits (n, classes), the next state).
        Safe to call from several threads at once; the fixed batch of a fixed-batch file applies."""
        feeds = {"row": rows, **dict(zip(self.arch.state_names, state, strict=True))}
        if self.graph_runner is not None:
            logits, *out = self.graph_runner.run(feeds)
        else:
            logits, *out = self.session.run(None, feeds)
        return logits, tuple(out)

    def step_packed(self, rows: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """step() with each stream's state packed as one row (n, state_size) (Arch.pack_state): what a
        server keeps per stream, whatever the cell and depth."""
        logits, out = self.step(rows, self.arch.unpack_state(states))
        return logits, self.arch.pack_state(out)

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Anytime prediction from the rows seen so far: (labels, probabilities)."""
        if self.last_logits is None:
            raise InputError("no rows pushed yet")
        probs = softmax(self.last_logits)
        return probs.argmax(axis=1), probs
