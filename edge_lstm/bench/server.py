"""`bench --scenario server`: MLPerf's Server scenario. Requests arrive as a Poisson process at a
target rate (open loop) against an Open Inference Protocol server (the load generator in its own
process, loadgen.py) or against the in-process runner (one worker answering in arrival order), so
that the HTTP layer's cost is a ratio within one run.

Latency runs from each request's scheduled arrival to its answer (MLPerf's definition: a request the
generator or the machine sent late counts its wait). A run is VALID when every request was answered
(no 503, no reset) and enough of them were measured for their p99. With a latency bound, `max_rate`
searches for the highest rate whose valid run keeps p99 under the bound (ratesearch.py).
"""

from __future__ import annotations

import functools
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.bench.loadgen import DRAIN_S, Job
from edge_lstm.bench.oip import Endpoint, binary_request
from edge_lstm.bench.ratesearch import START_RATE, ServerRun, max_rate, unmet
from edge_lstm.bench.settings import BenchSettings
from edge_lstm.bench.stats import quantile_ci, summarize
from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime.inputs import as_float

MIN_FOR_P99 = 100  # nearest-rank p99 needs at least 100 samples


def _judge(
    target: str,
    via: str,
    rate: float,
    seconds: float,
    latency_ms: np.ndarray,
    ok: np.ndarray,
    lag_ms: np.ndarray,
    cpu: float | None,
    min_count: int,
    bound_ms: float | None,
    failed: dict[int, int] | None = None,
) -> ServerRun:
    """`failed`: the statuses of the requests not answered with 200 (-1: no answer), for the reason."""
    good = np.sort(latency_ms[ok])
    s = summarize(good) if good.size else None
    p99 = None if s is None else s.p99_ms
    why = []
    if (~ok).any():
        seen = ", ".join(
            f"{n} {'got no answer' if code == -1 else f'answered {code}'}" for code, n in sorted((failed or {}).items())
        )
        why.append(
            f"{int((~ok).sum())} of {ok.size} requests were not answered with 200 ({seen or 'overloaded or failed'}; "
            "the server's log says why)"
        )
    if good.size < max(min_count, MIN_FOR_P99):
        why.append(f"{good.size} requests answered; at least {max(min_count, MIN_FOR_P99)} are needed")
    lag = float(np.percentile(lag_ms, 99)) if lag_ms.size else None
    ci99: list[float | None] = list(quantile_ci(good, Fraction(99, 100))) if good.size else [None, None]
    return ServerRun(
        target,
        via,
        rate,
        seconds,
        int(good.size),
        int((~ok).sum()),
        s.p50_ms if s else None,
        s.p90_ms if s else None,
        p99,
        list(s.p50_ci_ms) if s else [None, None],
        ci99,
        lag,
        cpu,
        not why,
        why,
        None if bound_ms is None or p99 is None else (not why and p99 <= bound_ms),
    )


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """One whole HTTP/1.1 POST, encoded once (the load generator sends these bytes as they are)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def run_http(
    endpoint: Endpoint,
    image: np.ndarray,
    rate: float,
    seconds: float,
    connections: int,
    min_count: int,
    bound_ms: float | None = None,
    seed: int = 0,
) -> ServerRun:
    """One Poisson run against an Open Inference Protocol server (binary tensors, batch 1)."""
    body, headers = binary_request(as_float(image[None]))
    request = http_request(endpoint.host, endpoint.port, endpoint.infer_path, body, {**headers, **endpoint.headers()})
    return run_request(
        endpoint.url, endpoint.host, endpoint.port, request, rate, seconds, connections, min_count, bound_ms, seed
    )


def run_request(
    target: str,
    host: str,
    port: int,
    request: bytes,
    rate: float,
    seconds: float,
    connections: int,
    min_count: int,
    bound_ms: float | None = None,
    seed: int = 0,
) -> ServerRun:
    """One Poisson run of a prepared request against any HTTP server, the generator in a process of
    its own (bounded in time)."""
    job = Job(host, port, request, rate, seconds, connections, seed)
    with tempfile.TemporaryDirectory(prefix="edge-lstm-loadgen-") as tmp:
        result = Path(tmp) / "run.json"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "edge_lstm.bench.loadgen", str(result)],
                input=job.to_json(),
                capture_output=True,
                text=True,
                timeout=seconds + DRAIN_S + 30,
            )
        except subprocess.TimeoutExpired:
            raise EdgeLstmError(
                f"{target}: the load generator did not finish in {seconds + DRAIN_S + 30:.0f} s"
            ) from None
        if proc.returncode != 0 or not result.exists():
            lines = proc.stderr.strip().splitlines()
            raise EdgeLstmError(f"the load generator failed: {lines[-1] if lines else proc.returncode}")
        out = json.loads(result.read_text())
    latency = np.array([np.nan if v is None else v for v in out["latency_ms"]], np.float64)
    status = np.asarray(out["status"])
    ok = (status == 200) & ~np.isnan(latency)
    codes, counts = np.unique(np.where(np.isnan(latency), -1, status)[~ok], return_counts=True)
    lag = np.array([v for v in out["lag_ms"] if v is not None], np.float64)
    if not ok.any() and (np.asarray(out["status"]) == -1).all():
        raise EdgeLstmError(f"{target}: no request reached the server (is it running?)")
    cpu = out["cpu_seconds"] / max(out["wall_seconds"], 1e-9)
    failed = {int(c): int(n) for c, n in zip(codes, counts, strict=True)}
    return _judge(target, "http", rate, seconds, latency, ok, lag, round(cpu, 3), min_count, bound_ms, failed)


def run_in_process(
    name: str,
    logits: Callable[[np.ndarray], Any],
    image: np.ndarray,
    rate: float,
    seconds: float,
    min_count: int,
    bound_ms: float | None = None,
    seed: int = 0,
) -> ServerRun:
    """The same Poisson schedule against the runner itself: one worker answers in arrival order."""
    x = as_float(image[None])
    n = max(1, int(rate * seconds))
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))
    sent, done = np.full(n, np.nan), np.full(n, np.nan)
    work: queue.Queue[int | None] = queue.Queue()

    def worker() -> None:
        while (i := work.get()) is not None:
            logits(x)
            done[i] = time.perf_counter()

    t = threading.Thread(target=worker, daemon=True, name="edge-lstm-inprocess")
    t.start()
    start = time.perf_counter()
    for i, at in enumerate(arrivals):
        delay = start + at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[i] = time.perf_counter()
        work.put(i)
    work.put(None)
    t.join(DRAIN_S + seconds)
    latency = (done - start - arrivals) * 1000  # from the scheduled arrival, as over HTTP
    ok = ~np.isnan(latency)
    lag = (sent - start - arrivals) * 1000
    return _judge(name, "in-process", rate, seconds, latency, ok, lag, None, min_count, bound_ms)


def measure_servers(
    cfg: BenchSettings, image: np.ndarray, progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """The server scenario for every URL (over HTTP) and every model file (in-process): one run per
    --rate, and with --latency-bound the highest rate that keeps p99 under it."""
    from edge_lstm.bench.oip import Client, parse_url
    from edge_lstm.runtime import Classifier, SessionConfig

    # Each target as a function of the offered rate alone (what max_rate searches over).
    targets: list[tuple[str, Callable[[float], ServerRun]]] = []
    for url in cfg.urls:
        endpoint = parse_url(url, cfg.token)
        client = Client(endpoint)
        client.metadata()  # a wrong URL or a foreign model: one error before minutes of load
        client.close()
        targets.append(
            (
                url,
                functools.partial(
                    run_http,
                    endpoint,
                    image,
                    seconds=cfg.min_seconds,
                    connections=cfg.connections,
                    min_count=cfg.min_count,
                    bound_ms=cfg.latency_bound_ms,
                ),
            )
        )
    for model in cfg.models:
        session = SessionConfig(
            provider=cfg.providers[0], provider_options=dict(cfg.provider_options), verbose=cfg.verbose
        )
        clf = Classifier(model, session)
        targets.append(
            (
                str(model),
                functools.partial(
                    run_in_process,
                    str(model),
                    clf.logits,
                    image,
                    seconds=cfg.min_seconds,
                    min_count=cfg.min_count,
                    bound_ms=cfg.latency_bound_ms,
                ),
            )
        )
    out: list[dict[str, Any]] = []
    for name, measure in targets:
        if progress:
            progress(f"server scenario: {name}")
        for rate in cfg.rates:
            out.append({"target": name, "run": measure(rate).to_dict()})
        if cfg.latency_bound_ms is not None:
            best, trail = max_rate(measure, START_RATE)
            out.append(
                {
                    "target": name,
                    "latency_bound_ms": cfg.latency_bound_ms,
                    "max_rate": best.rate if best else None,
                    "none_because": None if best else unmet(trail[-1], cfg.latency_bound_ms),
                    "best": best.to_dict() if best else None,
                    "trail": [t.to_dict() for t in trail],
                }
            )
    return out
