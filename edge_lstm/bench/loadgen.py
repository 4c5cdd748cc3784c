"""MLPerf's Server scenario against an HTTP server: requests arrive as a Poisson process at a target
rate, whatever the server does (open loop), from a process of their own.

Why a process of its own and not httpx: on 2 cores a Python load generator built on a general HTTP
client took a whole core and became the bottleneck (../shared notes, measured here). This one sends
requests encoded once, over a pool of persistent connections, with asyncio protocols and uvloop
when installed, and parses responses with httptools (the C parser uvicorn uses), so its own cost is
a few tens of microseconds a request; it reports that cost (its CPU seconds) with the results.

Latency is measured as MLPerf's LoadGen measures it: from the moment a request was SCHEDULED to
arrive (its Poisson arrival time) to the moment its whole response is read, so a request that could
not leave on time (no free connection, a starved generator) counts its wait. How late each request
left is recorded too (`lag`), to show where the time went.

    python -m edge_lstm.bench.loadgen result.json < job.json   (edge_lstm/bench/server.py starts it)
"""

from __future__ import annotations

import asyncio
import base64
import json
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

DRAIN_S = 10.0  # after the last arrival, how long answers are waited for


@dataclass
class Job:
    host: str
    port: int
    request: bytes  # the whole HTTP request, encoded once
    rate: float  # requests per second
    seconds: float  # how long arrivals go on
    connections: int  # at most this many requests in flight
    seed: int = 0

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["request"] = base64.b64encode(self.request).decode()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Job:
        d = json.loads(text)
        d["request"] = base64.b64decode(d["request"])
        return cls(**d)


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpResponseParser(self)
        self.transport: Any = None
        self.done: asyncio.Future[int] | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception as e:  # httptools' HttpParserError: a broken response
            if self.done is not None and not self.done.done():
                self.done.set_exception(e)

    def on_message_complete(self) -> None:  # httptools callback
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("the server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def send(self, request: bytes) -> int:
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.done


async def _generate(job: Job) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    rng = np.random.default_rng(job.seed)
    n = max(1, int(job.rate * job.seconds))
    arrivals = np.cumsum(rng.exponential(1.0 / job.rate, n))  # seconds after the start
    idle: list[Connection] = []
    count = {"opened": 0}
    free = asyncio.Condition()
    sent_at = np.full(n, np.nan)
    latency = np.full(n, np.nan)
    status = np.zeros(n, np.int32)

    async def connection() -> Connection:
        async with free:
            while not idle and count["opened"] >= job.connections:
                await free.wait()
            if idle:
                return idle.pop()
            count["opened"] += 1
        try:
            _, conn = await loop.create_connection(Connection, job.host, job.port)
        except OSError:
            async with free:
                count["opened"] -= 1
                free.notify()
            raise
        return conn

    async def one(i: int) -> None:
        try:
            conn = await connection()
        except OSError:  # refused: nobody listens there
            status[i] = -1
            return
        t0 = time.perf_counter()
        sent_at[i] = t0 - start
        try:
            status[i] = await conn.send(job.request)
            latency[i] = (time.perf_counter() - start - arrivals[i]) * 1000  # from the scheduled arrival
            keep = True
        except Exception:  # a reset, a refused or broken response: this request failed, the run goes on
            status[i], keep = -1, False
        async with free:
            if keep:
                idle.append(conn)
            else:
                conn.transport.close()
                count["opened"] -= 1
            free.notify()

    start = time.perf_counter()
    tasks = []
    for i, at in enumerate(arrivals):
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i)))
    _, pending = await asyncio.wait(tasks, timeout=DRAIN_S)
    for t in pending:
        t.cancel()
    for conn in idle:
        conn.transport.close()
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    lag = sent_at - arrivals
    return {
        "scheduled": n,
        "wall_seconds": wall,
        "duration": float(arrivals[-1]),
        "latency_ms": [None if np.isnan(v) else round(float(v), 4) for v in latency],
        "status": status.tolist(),
        "lag_ms": [None if np.isnan(v) else round(float(v) * 1000, 4) for v in lag],
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "unfinished": len(pending),
    }


def run(job: Job) -> dict[str, Any]:
    try:
        import uvloop

        return uvloop.run(_generate(job))
    except ImportError:
        return asyncio.run(_generate(job))


def main() -> None:
    # The result goes to a file named on the command line, not stdout: uvloop may leave the inherited
    # pipe non-blocking, and a large print into a full pipe then arrives cut at 128 KiB.
    result = run(Job.from_json(sys.stdin.read()))
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
