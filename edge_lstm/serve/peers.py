"""Streams across `serve --workers`: each sequence id has ONE owner worker (a stable hash of the id),
whose stream table holds its state. A stream row that reaches another worker (the kernel hands
connections to workers, not sequence ids) is forwarded to the owner over a Unix socket and runs in
the owner's sequence batcher, in one step call with the owner's other streams' rows. So every rule of
the single server holds unchanged whatever worker a row reaches: order, exact retries, idle expiry.

This is what Triton's sequence batcher does with a correlation id (one model instance holds it). A
shared-memory table was the other design: it would run rows where they arrive but needs a lock per
row and the table's rules written again over raw memory; a forwarded row costs one local round trip
(tens of microseconds), and a row whose id hashes to its own worker pays nothing. A WebSocket's
streams are the socket's own (websocket.py) and never leave its worker.

The wire between workers is our own processes on a socket in a private (0700) folder: a 4-byte length
and a pickle. A worker that died loses the streams it owned (the next row is told to start again),
as a restarted single server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import pickle
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.errors import EdgeLstmError
from edge_lstm.serve.stream_versions import VersionedStreams
from edge_lstm.serve.streamtable import Scoped, SequenceError, Sid

LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class WorkerPlace:
    """Where a worker of `serve --workers` stands: what its app needs beyond the ServeConfig."""

    index: int  # this worker, 0..workers-1
    workers: int
    folder: Path  # the workers' Unix sockets (private to this server)
    live: dict[str, Any]  # step model name -> live sequences per worker, in shared memory (streamtable.py)


def owner(sid: Sid, workers: int) -> int:
    """The worker holding sequence `sid`: the same in every worker (str's hash() differs per process)."""
    if isinstance(sid, Scoped):
        raise TypeError("a socket's sequence stays in its worker (VersionedStreams.here)")
    key = sid if isinstance(sid, int) else zlib.crc32(sid.encode())
    return key % workers


def socket_path(folder: Path, worker: int) -> Path:
    return folder / f"worker-{worker}.sock"


async def _read(reader: asyncio.StreamReader) -> Any:
    (size,) = LENGTH.unpack(await reader.readexactly(LENGTH.size))
    return pickle.loads(await reader.readexactly(size))


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=5)
    return LENGTH.pack(len(data)) + data


def _portable(e: BaseException) -> Exception:
    """The owner's refusal as the forwarding worker raises it (the same class: the same status)."""
    try:
        pickle.loads(pickle.dumps(e))
        return e if isinstance(e, Exception) else EdgeLstmError(str(e))
    except Exception:
        return EdgeLstmError(f"{type(e).__name__}: {e}")


class Peer:
    """This worker's one connection to another worker: requests multiplexed by number."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the other worker's socket
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.numbers = itertools.count()
        self._connecting = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None  # held: the loop keeps only a weak reference

    async def call(self, request: tuple[Any, ...]) -> Any:
        writer = await self._connect()
        number = next(self.numbers)
        future = self.waiting[number] = asyncio.get_running_loop().create_future()
        writer.write(_frame((number, request)))
        try:
            ok, value = await future
        finally:
            self.waiting.pop(number, None)
        if not ok:
            raise value
        return value

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._connecting:
            if self.writer is None or self.writer.is_closing():
                try:
                    reader, self.writer = await asyncio.open_unix_connection(str(self.path))
                except OSError:
                    raise SequenceError(
                        "the worker holding this sequence is restarting; start the sequence again in a moment"
                    ) from None
                self._reader = asyncio.get_running_loop().create_task(self._answers(reader, self.writer))
            return self.writer

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                number, answer = await _read(reader)
                future = self.waiting.get(number)
                if future is not None and not future.done():
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, OSError):
            pass  # the owner went away: what waits on it is told below
        finally:
            writer.close()
            lost = SequenceError("the worker holding this sequence stopped, and its streams with it; start it again")
            for future in self.waiting.values():
                if not future.done():
                    future.set_result((False, lost))


def connect(place: WorkerPlace) -> dict[int, Peer]:
    """This worker's connections to every other worker (made on first use)."""
    return {i: Peer(socket_path(place.folder, i)) for i in range(place.workers) if i != place.index}


async def broadcast(peers: dict[int, Peer], op: str, name: str) -> None:
    """A model-control call ("load" or "unload" of `name`) made on every other worker too: every worker
    serves the same versions. A worker that cannot do it says why in its own log."""
    results = await asyncio.gather(*(p.call((op, name)) for p in peers.values()), return_exceptions=True)
    for worker, r in zip(peers, results, strict=True):
        if isinstance(r, BaseException):
            logging.getLogger("edge_lstm.serve").error("worker %d did not %s %s: %s", worker, op, name, r)


class RoutedBatcher:
    """The step model's streams in a worker: rows of the sequences it owns run in its own batchers (one
    per version: stream_versions.py), the others are forwarded to their owner. Duck-types
    VersionedStreams for infer.py, grpc.py, websocket.py."""

    def __init__(self, name: str, local: VersionedStreams, worker: int, workers: int, peers: dict[int, Peer]) -> None:
        self.name, self.local, self.worker, self.workers, self.peers = name, local, worker, workers, peers

    @property
    def here(self) -> VersionedStreams:
        return self.local

    async def submit(
        self, sid: Sid, start: bool, end: bool, rows: np.ndarray, first_row: int | None = None, version: Any = None
    ) -> np.ndarray:
        home = owner(sid, self.workers)
        if home == self.worker:
            return await self.local.submit(sid, start, end, rows, first_row, version)
        request = ("submit", self.name, sid, start, end, rows, first_row, version)
        result: np.ndarray = await self.peers[home].call(request)
        return result

    async def forget(self, sid: Sid) -> None:
        home = owner(sid, self.workers)
        if home == self.worker:
            await self.local.forget(sid)
        else:
            await self.peers[home].call(("forget", self.name, sid))


QUIET_S = 0.3  # a stopping worker keeps answering its peers until they have been quiet this long


class Owner:
    """This worker's end: rows other workers forward to the sequences it owns, and the model-control
    calls another worker was given. A stopping worker drains it after its own requests: the others may
    still be forwarding rows of the requests they are finishing (every worker got the same SIGTERM),
    and those must be answered, not dropped."""

    def __init__(
        self, streams: Callable[[str], VersionedStreams], control: Callable[[str, str], Awaitable[None]]
    ) -> None:
        self.streams, self.control = streams, control
        self.busy = 0  # forwarded requests in flight here
        self.last = time.monotonic()  # when one last arrived or was answered
        self.server: asyncio.Server | None = None

    async def listen(self, folder: Path, worker: int) -> None:
        path = socket_path(folder, worker)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a dead predecessor's socket
        self.server = await asyncio.start_unix_server(self._handle, str(path))

    async def drain(self, limit_s: float) -> None:
        """Wait until nothing forwarded is in flight and the peers have been quiet for QUIET_S; then close."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and (self.busy or time.monotonic() - self.last < QUIET_S):
            await asyncio.sleep(0.02)
        if self.server is not None:
            self.server.close()

    async def _one(self, number: int, request: tuple[Any, ...], writer: asyncio.StreamWriter) -> None:
        op, name, *args = request
        self.busy += 1
        try:
            value: Any = None
            if op in ("load", "unload"):
                await self.control(op, name)
            elif op == "submit":
                value = await self.streams(name).submit(*args)
            else:
                await self.streams(name).forget(*args)
            answer: tuple[bool, Any] = (True, value)
        except Exception as e:  # the owner's refusal (or failure) goes back to the forwarding worker
            answer = (False, _portable(e))
        finally:
            self.busy -= 1
            self.last = time.monotonic()
        if not writer.is_closing():
            writer.write(_frame((number, answer)))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                number, request = await _read(reader)
                self.last = time.monotonic()
                task = asyncio.get_running_loop().create_task(self._one(number, request, writer))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            # The worker is stopping. Ended normally: Python 3.11's stream server logs a cancelled
            # handler as an error with a traceback.
            pass
        finally:
            writer.close()
