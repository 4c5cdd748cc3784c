"""Streams on Ray without two actor calls per row: a replica keeps the states of the sequences routed
to it, and the store actors hold the committed copy that any replica falls back on.

Routing: Ray's HAProxy balances on the `edge-lstm-sequence-id` header (HAProxy's `balance hdr()`: a
hash of the header, so while the replicas stay the same one sequence reaches one replica; requests
without it, images included, go round robin). A client that sends the header gets the fast path;
one that does not still gets right answers, from the store.

A row's path in the common case: the state from this replica's cache (no actor call), the step model
on the rows of every stream waiting in this replica (serve/streams.py), then a commit to the store
that is grouped with every other commit waiting in this replica at that moment (one actor call per
shard for all of them). The answer goes out only after the store has the new state, so a replica
killed at any point loses nothing: the stream's next row, or a retry of this one, reaches another
replica, which takes the committed state (or the committed answer) from the store.

A cached state can be stale: the replicas changed (one died, one was added) and the sequence's rows
went elsewhere for a while. The store refuses a commit whose version is not the committed one; the
replica then drops its copy and the request runs again from the store's state (Stale).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_lstm.serve.streams import Stale
from edge_lstm.serve.streamtable import Held, SequenceError, Sid

HEADER = "edge-lstm-sequence-id"
BALANCE = f"hdr({HEADER})"  # RAY_SERVE_HAPROXY_BALANCE_ALGORITHM
START = -1  # Held.version of a sequence this replica starts: the store creates it at the commit


@dataclass
class _Cached:
    state: np.ndarray  # packed (Arch.pack_state)
    steps: int
    version: int
    last_seen: float


class _GroupCommit:
    """Commits to one store actor: those waiting while a call is in flight go together in the next one."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.waiting: list[tuple[tuple[Any, ...], asyncio.Future[int]]] = []
        self.busy = False

    async def put(self, item: tuple[Any, ...]) -> int:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if not self.busy:
            self.busy = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self.waiting:
                batch, self.waiting = self.waiting, []
                try:
                    results = await self.actor.put_many.remote([item for item, _ in batch])
                except Exception as e:  # the store actor failed: every commit in the call failed with it
                    results = [e] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.busy = False


class AffineStore:
    """StateStore for a replica: its own sequences' states cached, commits grouped, the store behind."""

    def __init__(self, remote: Any, idle_s: float, state_size: int, max_steps: int | None) -> None:
        self.remote = remote  # ray_serve.RayStore: acquire/commit/live/forget on the store actors
        self.idle_s, self.state_size, self.max_steps = idle_s, state_size, max_steps
        self.cache: dict[Sid, _Cached] = {}
        self.groups = [_GroupCommit(a) for a in remote.actors]
        self.live_count, self.live_read = 0, 0.0

    def _group(self, sid: Sid) -> _GroupCommit:
        return self.groups[zlib.crc32(str(sid).encode()) % len(self.groups)]  # RayStore's shard of sid

    async def acquire(self, sid: Sid, start: bool, rows: int, first_row: int | None) -> Held | np.ndarray:
        now = time.monotonic()
        cached = self.cache.get(sid)
        if cached is not None and now - cached.last_seen > self.idle_s:
            del self.cache[sid]  # the store has forgotten it too
            cached = None

        def fits(steps: int) -> bool:
            return self.max_steps is None or steps + rows <= self.max_steps

        if start and first_row in (None, 0) and fits(0):
            return Held(np.zeros(self.state_size, np.float32), 0, START)
        if not start and cached is not None and first_row in (None, cached.steps) and fits(cached.steps):
            cached.last_seen = now
            return Held(cached.state.copy(), cached.steps, cached.version)
        # Not held here (another replica's sequence, a retry, a refusal to word): the store decides.
        self.cache.pop(sid, None)
        held: Held | np.ndarray = await self.remote.acquire(sid, start, rows, first_row)
        return held

    async def commit(self, sid: Sid, held: Held, state: np.ndarray, answer: np.ndarray, end: bool) -> None:
        version = None if held.version == START else held.version
        try:
            new = await self._group(sid).put((sid, version, held.steps, state, answer, end))
        except SequenceError:
            if self.cache.pop(sid, None) is None:
                raise  # the store's own state was refused: a real conflict
            raise Stale(f"sequence {sid!r}: this replica's copy was stale") from None
        if end:
            self.cache.pop(sid, None)
        else:
            self.cache[sid] = _Cached(state, held.steps + len(answer), new, time.monotonic())

    async def forget(self, sid: Sid) -> None:
        self.cache.pop(sid, None)
        await self.remote.forget(sid)

    async def live(self) -> int:
        """The store's count, read at most once a second (each read is an actor call per shard)."""
        if time.monotonic() - self.live_read > 1.0:
            self.live_read = time.monotonic()
            self.live_count = await self.remote.live()
            cutoff = self.live_read - self.idle_s
            for sid in [s for s, e in self.cache.items() if e.last_seen < cutoff]:
                del self.cache[sid]
        return self.live_count
