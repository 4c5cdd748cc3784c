"""`bench URL --streams N`: a step model's streams driven over the server's WebSocket route
(serve/websocket.py), closed loop: each stream sends one row, waits for its answer, sends the next.
The streams are split over client processes (one socket each), since one Python client process can be
what limits the rate on a small machine; their CPU is reported with the result. The rows are random
values of the model's sizes (its metadata), the steps of an image (or 28 for a model of any length).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import resource
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.bench.oip import Client, Endpoint
from edge_lstm.bench.stats import summarize
from edge_lstm.errors import ConfigError, ProviderError

HEADER = struct.Struct("<QII")
ANY_LENGTH_STEPS = 28


@dataclass(frozen=True)
class StreamRun:
    url: str
    streams: int
    clients: int
    seconds: float
    rows: int
    rows_per_s: float
    row_p50_ms: float | None
    row_p99_ms: float | None
    errors: int  # refused frames (text answers)
    client_cores: float  # the client processes' CPU, in cores

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def socket_url(endpoint: Endpoint) -> str:
    return f"ws://{endpoint.host}:{endpoint.port}/v2/models/{endpoint.model}/stream"


def step_sizes(endpoint: Endpoint) -> tuple[int, int]:
    """(steps, features) of the served step model: features from its metadata, its sequences' steps from
    its configuration (edge-lstm serve gives a step model's max_batch_size as its steps; a larger one, a
    model of any length, runs ANY_LENGTH_STEPS). ConfigError if it is not a step model."""
    client = Client(endpoint)
    try:
        answers = [client.get(f"/v2/models/{endpoint.model}{tail}") for tail in ("", "/config")]
    finally:
        client.close()
    for status, body in answers:
        if status != 200:
            raise ProviderError(f"{endpoint.url}: the server answered {status}: {body[:200].decode(errors='replace')}")
    meta, config = (json.loads(body) for _, body in answers)
    inputs = {i["name"]: i.get("shape") for i in meta.get("inputs", [])}
    if "sequence_batching" not in config or "row" not in inputs:
        raise ConfigError(f"{endpoint.url}: --streams drives a step model (input `row`); this one takes {list(inputs)}")
    steps = int(config.get("max_batch_size") or ANY_LENGTH_STEPS)
    return (steps if steps <= 1024 else ANY_LENGTH_STEPS), int(inputs["row"][-1])


async def drive(url: str, rows: np.ndarray, first: int, seconds: float, token: str | None) -> dict[str, Any]:
    """rows (streams, steps, features): every stream closed loop over `url` for `seconds`."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    errors = 0
    n, steps = rows.shape[:2]
    headers = {"Authorization": f"Bearer {token}"} if token else None
    frames = [
        [HEADER.pack(first + k, (t == 0) | (t == steps - 1) << 1, 1) + rows[k, t].tobytes() for t in range(steps)]
        for k in range(n)
    ]
    async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
        step = [0] * n
        sent: dict[int, float] = {}
        stop = time.perf_counter() + seconds
        for k in range(n):
            sent[k] = time.perf_counter()
            await ws.send(frames[k][0])
        while sent:
            message = await ws.recv()
            if isinstance(message, str):
                answer = json.loads(message)
                if answer.get("sequence_id") is None:
                    raise ProviderError(f"{url}: {answer.get('error')}")
                errors += 1
                k = int(answer["sequence_id"]) - first
                step[k] = steps - 1  # start the stream again
            else:
                k = HEADER.unpack_from(message)[0] - first
            now = time.perf_counter()
            latencies.append((now - sent.pop(k)) * 1000)
            step[k] = (step[k] + 1) % steps
            if now < stop:
                sent[k] = now
                await ws.send(frames[k][step[k]])
    return {"latency_ms": latencies, "errors": errors}


def client_main() -> None:
    """A client process: its job as its last argument, its latencies and CPU in the job's result file."""
    job = json.loads(sys.argv[-1])
    rng = np.random.default_rng(job["first"])
    rows = rng.random((job["streams"], job["steps"], job["features"]), dtype=np.float32)
    t0 = time.perf_counter()
    result = asyncio.run(drive(job["url"], rows, job["first"] + 1, job["seconds"], job["token"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    done = {**result, "wall": time.perf_counter() - t0, "cpu_seconds": usage.ru_utime + usage.ru_stime}
    Path(job["result"]).write_text(json.dumps(done))


def split(streams: int, clients: int) -> list[tuple[int, int]]:
    """(streams, first stream's index) for each client: the streams shared out as evenly as they go."""
    share = [streams // clients + (i < streams % clients) for i in range(clients)]
    return [(n, sum(share[:i])) for i, n in enumerate(share)]


def run_clients(command: list[str], jobs: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
    """One client process per job (its JSON as the last argument; its result written to the file the job names, so
    that nothing a library prints can mix into it), all started before any is waited for; RuntimeError
    with a failed client's last line."""
    with tempfile.TemporaryDirectory(prefix="edge-lstm-streams-") as tmp:
        jobs = [{**job, "result": str(Path(tmp) / f"{i}.json")} for i, job in enumerate(jobs)]
        procs = [
            subprocess.Popen(
                [*command, json.dumps(job)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for job in jobs
        ]
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError((err.strip().splitlines() or ["no output"])[-1])
        return [json.loads(Path(job["result"]).read_text()) for job in jobs]


def run_streams(endpoint: Endpoint, streams: int, seconds: float, clients: int = 2) -> StreamRun:
    if streams < 1 or clients < 1:
        raise ConfigError("--streams must be >= 1")
    if importlib.util.find_spec("websockets") is None:
        raise ConfigError("--streams needs the websockets package: pip install -e '.[serve]'")
    steps, features = step_sizes(endpoint)
    url = socket_url(endpoint)
    clients = min(clients, streams)
    jobs = [
        {
            "url": url,
            "streams": n,
            "first": first,
            "steps": steps,
            "features": features,
            "seconds": seconds,
            "token": endpoint.token,
        }
        for n, first in split(streams, clients)
    ]
    try:
        results = run_clients([sys.executable, "-m", "edge_lstm.bench.streamload"], jobs, seconds + 120)
    except RuntimeError as e:
        raise ProviderError(f"{endpoint.url}: the stream client failed: {e}") from None
    return StreamRun(endpoint.url, streams, clients, seconds, **pooled(results))


def pooled(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Client processes' results (latency_ms, wall, cpu_seconds, errors) as one: rows, rows/s over the
    longest wall time, row p50/p99 over every row, errors, the clients' CPU in cores."""
    latencies = np.concatenate([np.asarray(r["latency_ms"], float) for r in results])
    wall = max(r["wall"] for r in results)
    s = summarize(latencies)
    return {
        "rows": len(latencies),
        "rows_per_s": round(len(latencies) / wall, 1),
        "row_p50_ms": s.p50_ms,
        "row_p99_ms": s.p99_ms,
        "errors": sum(r.get("errors", 0) for r in results),
        "client_cores": round(sum(r["cpu_seconds"] for r in results) / wall, 3),
    }


if __name__ == "__main__":
    client_main()
