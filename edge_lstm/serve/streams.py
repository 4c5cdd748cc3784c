"""Streams: the step model served statefully, with Triton's sequence-batcher semantics.

A client sends a stream's rows one (or a few) at a time under a sequence id; the first request
carries `sequence_start`, the last `sequence_end`. Each request takes its sequence's state from the
store (streamtable.py: in this process, or shared by a cluster's replicas), runs its rows, and
commits the new state; each row is answered with the logits so far. Rows of different requests that
are waiting at the same moment run as ONE step call (their states stacked): the step model's cost is
per call, not per row, so many streams cost little more than one. A request's rows run in order,
one per step call.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.serve.streamtable import Held, Sid, StreamTable

# (rows (n, features), packed states (n, state_size)) -> (logits (n, classes), the states after the rows)
StepFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
EXPIRE_EVERY_S = 1.0


class InOrder:
    """The requests of one streaming connection (a gRPC stream, a WebSocket): those of one sequence run
    in the order they came, those of different sequences at once, so their rows share step calls."""

    def __init__(self) -> None:
        self.latest: dict[Any, asyncio.Task[None]] = {}  # per sequence id: its latest request, which the next waits on
        self.pending: set[asyncio.Task[None]] = set()

    def run(self, sid: Any, work: Callable[[], Awaitable[None]]) -> None:
        """Start `work` once `sid`'s earlier requests are done (at once for sid None)."""
        before = self.latest.get(sid) if sid is not None else None

        async def after() -> None:
            if before is not None:
                await asyncio.wait([before])
            await work()

        task = asyncio.get_running_loop().create_task(after())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        if sid is not None:
            self.latest[sid] = task
            task.add_done_callback(functools.partial(self._forget, sid))

    def _forget(self, sid: Any, task: asyncio.Task[None]) -> None:
        if self.latest.get(sid) is task:  # not if a later request of sid took its place
            del self.latest[sid]

    async def finish(self) -> None:
        """Wait for every request started (the client closed its side and waits for the answers)."""
        if self.pending:
            await asyncio.wait(self.pending)

    def cancel(self) -> None:
        """The client went away: nothing left to answer."""
        for task in list(self.pending):
            task.cancel()


class Stale(Exception):
    """A store's cached copy of a sequence was not the committed state (cluster/affinity.py): nothing
    was committed, and the request runs once more from the committed state."""


class StateStore(Protocol):
    """Where sequences' states live between requests (LocalStore here; a Ray actor in a cluster)."""

    async def acquire(self, sid: Sid, start: bool, rows: int, first_row: int | None) -> Held | np.ndarray: ...
    async def commit(self, sid: Sid, held: Held, state: np.ndarray, answer: np.ndarray, end: bool) -> None: ...
    async def live(self) -> int: ...
    async def forget(self, sid: Sid) -> None: ...  # a stream whose client went away


class LocalStore:
    """The table in this process."""

    def __init__(
        self,
        idle_s: float,
        max_sequences: int,
        arch: Arch = contract.MNIST,
        shared_live: tuple[Any, int] | None = None,
    ) -> None:
        self.table = StreamTable(idle_s, max_sequences, arch.state_size, arch.steps, shared_live, arch.image)

    async def acquire(self, sid: Sid, start: bool, rows: int, first_row: int | None) -> Held | np.ndarray:
        return self.table.acquire(sid, start, rows, first_row)

    async def commit(self, sid: Sid, held: Held, state: np.ndarray, answer: np.ndarray, end: bool) -> None:
        self.table.commit(sid, held, state, answer, end)

    async def live(self) -> int:
        self.table.expire()
        return self.table.live

    async def forget(self, sid: Sid) -> None:
        self.table.forget(sid)


@dataclass(eq=False)  # compared by identity (list.remove): its fields hold arrays
class _Job:
    rows: np.ndarray  # (k, features) float32
    state: np.ndarray  # (state_size,): the state after the rows done so far, packed
    future: asyncio.Future[np.ndarray]
    done: int = 0
    logits: list[np.ndarray] = field(default_factory=list)


def _report(task: asyncio.Task[None]) -> None:
    """A batcher task that ends other than by cancellation leaves requests unanswered: say so loudly."""
    if not task.cancelled() and task.exception() is not None:
        import logging

        logging.getLogger("edge_lstm.serve").error("the stream batcher stopped", exc_info=task.exception())


class SequenceBatcher:
    def __init__(
        self,
        step: StepFn,
        max_batch: int,
        store: StateStore,
        observe: Callable[[int], None] | None = None,
        on_live: Callable[[int], None] | None = None,
        ran: Callable[[int, float, float], None] | None = None,
    ) -> None:
        self.step, self.max_batch, self.store = step, max_batch, store
        self.observe = observe or (lambda batch: None)  # rows per step call
        self.on_live = on_live or (lambda live: None)  # sequences held, whenever it is read
        self.ran = ran or (lambda batch, queued_s, compute_s: None)  # each step call: rows, 0, its seconds
        self.jobs: list[_Job] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._loop()), loop.create_task(self._count())]
        for t in self._tasks:
            t.add_done_callback(_report)

    async def stop(self) -> None:
        while self.jobs:
            await asyncio.sleep(0.005)
        for t in self._tasks:
            t.cancel()

    async def submit(
        self, sid: Sid, start: bool, end: bool, rows: np.ndarray, first_row: int | None = None
    ) -> np.ndarray:
        """(k, features) rows of one sequence -> (k, classes): the logits after each of them."""
        held = await self.store.acquire(sid, start, len(rows), first_row)
        if isinstance(held, np.ndarray):
            return held  # a retry of a committed request: its answer
        job = _Job(rows, held.state, asyncio.get_running_loop().create_future())
        self.jobs.append(job)
        self._wake.set()
        answer = await job.future
        try:
            await self.store.commit(sid, held, job.state, answer, end)
        except Stale:  # the store dropped its copy: this time it takes the committed state
            return await self.submit(sid, start, end, rows, first_row)
        self.on_live(await self.store.live())
        return answer

    async def forget(self, sid: Sid) -> None:
        """A stream whose client went away: its state is freed."""
        await self.store.forget(sid)

    async def _loop(self) -> None:
        while True:
            self.jobs = [j for j in self.jobs if not j.future.cancelled()]  # clients that went away
            ready = self.jobs[: self.max_batch]
            if not ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            rows = np.stack([j.rows[j.done] for j in ready])  # (n, features)
            states = np.stack([j.state for j in ready])  # (n, state_size)
            self.observe(len(ready))
            try:
                # On the event loop, not a worker thread: one step of the LSTM for the waiting rows takes
                # tens of microseconds, less than the hand-off to a thread and back (measured with
                # bench/stream_rpc.py: 16 streams over the WebSocket 8,600 -> 12,800 rows/s inline).
                started = time.perf_counter()
                logits, states_out = self.step(rows, states)
                self.ran(len(ready), 0.0, time.perf_counter() - started)
            except Exception as e:  # the step model's failure belongs to every job of this call
                for j in ready:
                    self.jobs.remove(j)
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            for i, j in enumerate(ready):
                j.state = states_out[i].copy()
                j.logits.append(logits[i])
                j.done += 1
                if j.done == len(j.rows):
                    self.jobs.remove(j)
                    if not j.future.done():
                        j.future.set_result(np.stack(j.logits))
            await asyncio.sleep(0)  # the loop's other work (answers out, new rows in) before the next step

    async def _count(self) -> None:
        while True:  # idle sequences expire in the store; the gauge follows
            await asyncio.sleep(EXPIRE_EVERY_S)
            self.on_live(await self.store.live())
