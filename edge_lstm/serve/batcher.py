"""Dynamic batching: requests that arrive together run as one runner call.

Triton's `dynamic_batching` semantics: while the model is busy, requests queue; when it is free, the
queued requests (whole, in arrival order) are merged up to `max_batch` images and run at once. A
request that finds the model idle waits at most `max_delay_s` for others to join it (0: never waits:
under load the queue fills by itself while the model runs). The queue is bounded in images: past
`max_queue` a request is refused at once (503) instead of growing memory and latency without end.

A batch of up to INLINE_IMAGES images runs on the event loop's own thread (2.6 ms at most for 64
images here): the hand-off to a worker thread and back (a futex wake, the GIL passed twice, a write
to the loop's self-pipe) cost more CPU than the overlap of parsing and inference saved. With
`wrk -t1 -c16 -d6s --latency` (binary one-image requests) on 2 cores of an Intel Xeon,
`--workers 1`: 5,415 req/s in a thread, 6,635 inline, and 110 us less server CPU per request at
1,000 req/s. (An older measurement on an AMD EPYC, running
only lone requests inline, had found the opposite; this one, with whole batches, is the one kept.)
Bigger batches (a client's 4,096 images: 170 ms) go to a worker thread so that the loop is not held
that long, and with `instances` > 1 every call does: that many run at once (Triton's instance_group).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

INLINE_IMAGES = 64  # a batch of at most this many images runs on the event loop's own thread


class Overloaded(Exception):
    """The queue is full: the caller answers 503 with Retry-After."""


@dataclass
class _Pending:
    x: np.ndarray
    future: asyncio.Future[np.ndarray]
    arrived: float


Observer = Callable[[int, int], None]  # (batch size run, queue depth after taking it)
# after a call: (batch size, seconds its images waited in all, seconds it ran)
Timer = Callable[[int, float, float], None]


class DynamicBatcher:
    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        max_batch: int,
        max_delay_s: float,
        max_queue: int,
        instances: int = 1,
        observe: Observer | None = None,
        timed: Timer | None = None,
    ) -> None:
        self.run, self.max_batch, self.max_delay_s, self.max_queue = run, max_batch, max_delay_s, max_queue
        self.instances = instances
        self.observe = observe or (lambda batch, depth: None)
        self.timed = timed
        self.queue: deque[_Pending] = deque()
        self.queued = 0  # images waiting
        self.busy = 0  # runner calls in flight
        self.executor = ThreadPoolExecutor(instances, thread_name_prefix="edge-lstm-batch")
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()  # the event loop keeps only weak references
        self.stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="edge-lstm-batcher")

    async def stop(self) -> None:
        """After the server stopped accepting: let what is queued finish, then stop."""
        while self.queue or self.busy:
            await asyncio.sleep(0.005)
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=True)

    async def submit(self, x: np.ndarray) -> np.ndarray:
        if self.stopped:  # a version replaced meanwhile (registry.py): never a request left waiting forever
            raise Overloaded("this model version was just replaced; send the request again")
        if self.queued + len(x) > self.max_queue:
            raise Overloaded(f"{self.queued} images are queued (limit {self.max_queue})")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self.queue.append(_Pending(x, future, time.perf_counter()))
        self.queued += len(x)
        self._wake.set()
        return await future  # a client that goes away cancels this; the batch skips it (_take)

    def _take(self) -> list[_Pending]:
        taken: list[_Pending] = []
        total = 0
        while self.queue:
            head = self.queue[0]
            if head.future.cancelled():  # its client disconnected: drop it, nothing to answer
                self.queue.popleft()
                self.queued -= len(head.x)
                continue
            if taken and total + len(head.x) > self.max_batch:
                break
            self.queue.popleft()
            self.queued -= len(head.x)
            taken.append(head)
            total += len(head.x)
        return taken

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.queue or self.busy >= self.instances:
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.busy == 0 and self.max_delay_s > 0:  # an idle model waits a little for company
                wait = self.queue[0].arrived + self.max_delay_s - time.perf_counter()
                while wait > 0 and self.queued < self.max_batch:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except TimeoutError:
                        break
                    wait = self.queue[0].arrived + self.max_delay_s - time.perf_counter() if self.queue else 0
            batch = self._take()
            if not batch:
                continue
            self.busy += 1
            self.observe(sum(len(p.x) for p in batch), self.queued)
            task = loop.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            x = batch[0].x if len(batch) == 1 else np.concatenate([p.x for p in batch])
            if len(x) <= INLINE_IMAGES and self.instances == 1:
                out = self.run(x)
            else:
                out = await loop.run_in_executor(self.executor, self.run, x)
        except Exception as e:  # the runner's error belongs to every request of the batch
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(e)
        else:
            start = 0
            for p in batch:
                if not p.future.done():
                    p.future.set_result(out[start : start + len(p.x)])
                start += len(p.x)
            if self.timed is not None:
                waited = sum(started - p.arrived for p in batch)
                self.timed(len(x), waited, time.perf_counter() - started)
        finally:
            self.busy -= 1
            self._wake.set()
