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
from edge_lstm.serve.streamtable import Held, SequenceError, TableFull

HEADER = "edge-lstm-sequence-id"
BALANCE = f"hdr({HEADER})"  # RAY_SERVE_HAPROXY_BALANCE_ALGORITHM
START = -1  # Held.version of a sequence this replica starts: the store creates it at the commit


@dataclass
class _Cached:
    h: np.ndarray
    c: np.ndarray
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

    def __init__(
        self, remote: Any | None, idle_s: float, hidden: int, max_steps: int | None, max_sequences: int
    ) -> None:
        # ray_serve.RayStore (acquire/commit/live on the store actors); None: the states live in this
        # replica only (`--ray-streams replica`: no actor call at all, and a lost replica loses its streams)
        self.remote = remote
        self.idle_s, self.hidden, self.max_steps, self.max_sequences = idle_s, hidden, max_steps, max_sequences
        self.cache: dict[str | int, _Cached] = {}
        self.groups = [_GroupCommit(a) for a in remote.actors] if remote is not None else []
        self.live_count, self.live_read = 0, 0.0

    def _group(self, sid: str | int) -> _GroupCommit:
        return self.groups[zlib.crc32(str(sid).encode()) % len(self.groups)]  # RayStore's shard of sid

    async def acquire(self, sid: str | int, start: bool, rows: int, first_row: int | None) -> Held | np.ndarray:
        now = time.monotonic()
        cached = self.cache.get(sid)
        if cached is not None and now - cached.last_seen > self.idle_s:
            del self.cache[sid]  # the store has forgotten it too
            cached = None

        def fits(steps: int) -> bool:
            return self.max_steps is None or steps + rows <= self.max_steps

        if start and first_row in (None, 0) and fits(0):
            if self.remote is None and sid not in self.cache and len(self.cache) >= self.max_sequences:
                raise TableFull(f"{len(self.cache)} sequences are live in this replica (limit {self.max_sequences})")
            zeros = np.zeros(self.hidden, np.float32)
            return Held(zeros, zeros.copy(), 0, START)
        if not start and cached is not None and first_row in (None, cached.steps) and fits(cached.steps):
            cached.last_seen = now
            return Held(cached.h.copy(), cached.c.copy(), cached.steps, cached.version)
        # Not held here (another replica's sequence, a retry, a refusal to word): the store decides.
        if self.remote is None:
            return self._refuse(sid, start, rows, first_row, cached)
        self.cache.pop(sid, None)
        held: Held | np.ndarray = await self.remote.acquire(sid, start, rows, first_row)
        return held

    def _refuse(self, sid: str | int, start: bool, rows: int, first_row: int | None, cached: _Cached | None) -> Held:
        """Why a replica that holds its streams alone cannot run this request (a SequenceError), in the
        words the store's table uses."""
        if start and first_row not in (None, 0):
            raise SequenceError(
                f"sequence {sid!r}: sequence_start with sequence_row {first_row}; a stream starts at row 0"
            )
        if not start and cached is None:
            raise SequenceError(
                f"sequence {sid!r} is not live in this replica (never started, ended, idle for over {self.idle_s:g} s, "
                f"or its replica was lost); with --ray-streams replica send {HEADER} with every row, "
                "and start a lost stream again"
            )
        if not start and cached is not None and first_row not in (None, cached.steps):
            raise SequenceError(f"sequence {sid!r}: this request starts at row {first_row}; the stream is at row "
                                f"{cached.steps}")  # fmt: skip
        steps = 0 if start or cached is None else cached.steps
        raise SequenceError(f"sequence {sid!r} would have {steps + rows} rows; the model's sequences have "
                            f"{self.max_steps} (end it and start a new sequence)")  # fmt: skip

    async def commit(
        self, sid: str | int, held: Held, h: np.ndarray, c: np.ndarray, answer: np.ndarray, end: bool
    ) -> None:
        version = None if held.version == START else held.version
        if self.remote is None:  # this replica's copy is the only one
            if end:
                self.cache.pop(sid, None)
            else:
                self.cache[sid] = _Cached(h, c, held.steps + len(answer), held.version, time.monotonic())
            return
        try:
            new = await self._group(sid).put((sid, version, held.steps, h, c, answer, end))
        except SequenceError:
            if self.cache.pop(sid, None) is None:
                raise  # the store's own state was refused: a real conflict
            raise Stale(f"sequence {sid!r}: this replica's copy was stale") from None
        if end:
            self.cache.pop(sid, None)
        else:
            self.cache[sid] = _Cached(h, c, held.steps + len(answer), new, time.monotonic())

    async def forget(self, sid: str | int) -> None:
        self.cache.pop(sid, None)
        if self.remote is not None:
            await self.remote.forget(sid)

    async def live(self) -> int:
        """The store's count, read at most once a second (each read is an actor call per shard); with no
        store, this replica's."""
        if time.monotonic() - self.live_read > 1.0:
            self.live_read = time.monotonic()
            self.live_count = await self.remote.live() if self.remote is not None else len(self.cache)
            cutoff = self.live_read - self.idle_s
            for sid in [s for s, e in self.cache.items() if e.last_seen < cutoff]:
                del self.cache[sid]
        return self.live_count
