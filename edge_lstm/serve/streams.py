"""Streams: the step model served statefully, with Triton's sequence-batcher semantics.

A client sends a stream's rows one (or a few) at a time under a sequence id; the first request
carries `sequence_start`, the last `sequence_end`. The server keeps each sequence's LSTM state (h, c:
2 x 128 floats) and answers each row with the logits so far. Rows of different sequences that are
waiting at the same moment run as ONE step call (their states stacked): the step model's cost is per
call, not per row, so many streams cost little more than one. A request's rows run in order, one
per step call. A sequence idle for `idle_s` is forgotten (its next request without a start flag is
refused), and at most `max_sequences` are held, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from edge_lstm import contract
from edge_lstm.serve.batcher import Overloaded

StepFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


class SequenceError(Exception):
    """A request the sequence rules refuse (unknown id, too many rows): answered with 400."""


@dataclass
class _Job:
    rows: np.ndarray  # (k, 28) float32
    future: asyncio.Future[np.ndarray]
    done: int = 0
    logits: list[np.ndarray] = field(default_factory=list)
    end: bool = False


@dataclass
class _Sequence:
    h: np.ndarray  # (128,)
    c: np.ndarray
    steps: int = 0  # rows taken (queued ones included)
    last_seen: float = 0.0
    jobs: deque[_Job] = field(default_factory=deque)


class SequenceBatcher:
    def __init__(
        self, step: StepFn, max_batch: int, idle_s: float, max_sequences: int,
        observe: Callable[[int], None] | None = None, on_live: Callable[[int], None] | None = None,
    ) -> None:  # fmt: skip
        self.step, self.max_batch, self.idle_s, self.max_sequences = step, max_batch, idle_s, max_sequences
        self.observe = observe or (lambda batch: None)  # rows per step call
        self.on_live = on_live or (lambda live: None)  # sequences held, whenever that changes
        self.sequences: dict[str | int, _Sequence] = {}
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="edge-lstm-streams")
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop()), loop.create_task(self._expire())]

    async def stop(self) -> None:
        while any(s.jobs for s in self.sequences.values()):
            await asyncio.sleep(0.005)
        for t in self._tasks:
            t.cancel()
        self.executor.shutdown(wait=True)

    @property
    def live(self) -> int:
        return len(self.sequences)

    async def submit(self, sequence_id: str | int, start: bool, end: bool, rows: np.ndarray) -> np.ndarray:
        """(k, 28) rows of one sequence -> (k, 10): the logits after each of them."""
        now = time.monotonic()
        seq = self.sequences.get(sequence_id)
        if start:
            if seq is not None and seq.jobs:
                raise SequenceError(f"sequence {sequence_id!r} is still running a request; wait for its answer")
            if seq is None and len(self.sequences) >= self.max_sequences:
                raise Overloaded(f"{len(self.sequences)} sequences are live (limit {self.max_sequences})")
            zeros = np.zeros(contract.N_HIDDEN, np.float32)
            seq = self.sequences[sequence_id] = _Sequence(zeros, zeros.copy())
            self.on_live(len(self.sequences))
        elif seq is None:
            raise SequenceError(
                f"sequence {sequence_id!r} is not live (never started, ended, or idle for over {self.idle_s:g} s); "
                "send its first request with sequence_start"
            )
        if seq.steps + len(rows) > contract.N_STEPS:
            raise SequenceError(
                f"sequence {sequence_id!r} would have {seq.steps + len(rows)} rows; an image has {contract.N_STEPS} "
                "(end it and start a new sequence)"
            )
        seq.steps += len(rows)
        seq.last_seen = now
        job = _Job(rows, asyncio.get_running_loop().create_future(), end=end)
        seq.jobs.append(job)
        self._wake.set()
        try:
            return await job.future
        finally:
            if end or job.future.cancelled():
                self._forget(sequence_id, seq)

    def _forget(self, sequence_id: str | int, seq: _Sequence) -> None:
        if self.sequences.get(sequence_id) is seq:
            del self.sequences[sequence_id]
            self.on_live(len(self.sequences))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            ready = [(sid, s) for sid, s in self.sequences.items() if s.jobs][: self.max_batch]
            if not ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            for _, s in ready:  # a cancelled request (its client went away) is dropped here
                while s.jobs and s.jobs[0].future.cancelled():
                    s.jobs.popleft()
            ready = [(sid, s) for sid, s in ready if s.jobs]
            if not ready:
                continue
            rows = np.stack([s.jobs[0].rows[s.jobs[0].done] for _, s in ready])  # (n, 28)
            h = np.stack([s.h for _, s in ready])[None]  # (1, n, 128)
            c = np.stack([s.c for _, s in ready])[None]
            self.observe(len(ready))
            try:
                logits, h_out, c_out = await loop.run_in_executor(self.executor, self.step, rows, h, c)
            except Exception as e:  # the step model's failure belongs to every job of this call
                for _, s in ready:
                    job = s.jobs.popleft()
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            for i, (_, s) in enumerate(ready):
                s.h, s.c = h_out[0, i].copy(), c_out[0, i].copy()
                job = s.jobs[0]
                job.logits.append(logits[i])
                job.done += 1
                if job.done == len(job.rows):
                    s.jobs.popleft()
                    if not job.future.done():
                        job.future.set_result(np.stack(job.logits))

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_s / 4))
            cutoff = time.monotonic() - self.idle_s
            for sid, s in list(self.sequences.items()):
                if not s.jobs and s.last_seen < cutoff:
                    self._forget(sid, s)
