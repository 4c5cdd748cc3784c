"""Serving, measured in ONE run: edge-lstm serve with dynamic batching (its default workers, and
--workers 1), the same server with batching off, the server a user would write by hand
(bench/fastapi_baseline.py) and the real Triton (`edge-lstm serve --triton`: tritonserver, Python
backend, the same files), each at the highest Poisson rate whose p99 stays under the latency bound
(MLPerf's Server scenario); wrk (C, closed loop) at 1, 16 and 64 connections as a second client; the
server's CPU per request (its whole process tree, from /proc) over a fixed number of requests at
fixed rates; the HTTP layer's cost at low load against the in-process runner and Triton; and stream
serving against in-process runners.

    pip install fastapi   # for the hand-written baseline only
    pip install --no-deps nvidia-pytriton==0.7.0   # Triton's server
    python bench/serve.py [MODEL] [STEP] [--bound 10] [--seconds 5]   # -> bench/results/serve.json (~15 min)

Every server runs in its own process on loopback; the load generator in another (loadgen.py), its
own CPU use reported. The machine has 2 cores: server, load generator and (in-process rows) runner
share them, as they would on a small edge gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.bench.loadgen import Connection
from edge_lstm.bench.oip import parse_url
from edge_lstm.bench.server import ServerRun, http_request, max_rate, run_http, run_in_process, run_request
from edge_lstm.bench.stats import summarize
from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.runtime import Classifier, StreamingClassifier

ROOT = Path(__file__).resolve().parent.parent
START_RATE = 200.0
ROWS = 28  # an MNIST image: 28 rows of 28 pixels, a stream of 28 steps


def free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], health: str, stack: ExitStack) -> int:
    """The server started (stopped when `stack` closes); its pid once it answers `health`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    stack.callback(lambda: (proc.terminate(), proc.wait(30)))
    for _ in range(300):
        try:
            with urllib.request.urlopen(health, timeout=1):
                return proc.pid
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"{' '.join(cmd)} did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
    sys.exit(f"{' '.join(cmd)} did not answer {health}")


def search(name: str, measure: Any) -> dict[str, Any]:
    print(f"max rate: {name}", file=sys.stderr, flush=True)
    best, trail = max_rate(measure, START_RATE)
    return {
        "target": name,
        "max_rate": best.rate if best else None,
        "best": best.to_dict() if best else None,
        "trail": [t.to_dict() for t in trail],
    }


# --- stream serving: N streams, each sending its image's rows one request at a time (closed loop)
def stream_requests(host: str, port: int, model: str, images: np.ndarray) -> list[list[bytes]]:
    """Per stream, its 28 requests (row t, sequence_start at row 0, sequence_end at row 27), encoded once."""
    out = []
    for k, image in enumerate(images):
        rows = image.astype("<f4") / 255
        reqs = []
        for t in range(ROWS):
            head = json.dumps(
                {
                    "inputs": [
                        {"name": "row", "shape": [1, 28], "datatype": "FP32", "parameters": {"binary_data_size": 112}}
                    ],
                    "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
                    "parameters": {
                        "sequence_id": k + 1,
                        "sequence_start": t == 0,
                        "sequence_end": t == ROWS - 1,
                    },
                }
            ).encode()
            body = head + rows[t].tobytes()
            # edge-lstm-sequence-id: on Ray, HAProxy sends a sequence's rows to one replica by it (a single
            # server ignores it)
            reqs.append(
                http_request(
                    host,
                    port,
                    f"/v2/models/{model}/infer",
                    body,
                    {"Inference-Header-Content-Length": str(len(head)), "edge-lstm-sequence-id": str(k + 1)},
                )
            )
        out.append(reqs)
    return out


async def drive_streams(host: str, port: int, requests: list[list[bytes]], seconds: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    failed = 0
    stop = time.perf_counter() + seconds

    async def stream(reqs: list[bytes]) -> None:
        nonlocal failed
        _, conn = await loop.create_connection(Connection, host, port)
        while time.perf_counter() < stop:
            for req in reqs:  # one image, row by row; the answer to each row before the next
                t0 = time.perf_counter()
                if await conn.send(req) != 200:
                    failed += 1
                latencies.append((time.perf_counter() - t0) * 1000)
        conn.transport.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(stream(r) for r in requests))
    wall = time.perf_counter() - t0
    return {"rows": len(latencies), "wall_seconds": wall, "latency_ms": latencies, "failed": failed}


def stream_client_main() -> None:
    """The stream client's own process: reads its job on stdin, prints its result."""
    import resource

    job = json.loads(sys.stdin.read())
    images = mnist.load_split(mnist.locate(None), "test").images[: job["streams"]]
    requests = stream_requests(job["host"], job["port"], job["model"], images)
    try:
        import uvloop

        result = uvloop.run(drive_streams(job["host"], job["port"], requests, job["seconds"]))
    except ImportError:
        result = asyncio.run(drive_streams(job["host"], job["port"], requests, job["seconds"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(result))


def streams_over_http(host: str, port: int, model: str, n: int, seconds: float) -> dict[str, Any]:
    job = json.dumps({"host": host, "port": port, "model": model, "streams": n, "seconds": seconds})
    proc = subprocess.run(
        [sys.executable, __file__, "--stream-client"],
        input=job,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    r = json.loads(proc.stdout)
    s = summarize(np.asarray(r["latency_ms"]))
    return {
        "streams": n,
        "rows_per_s": round(r["rows"] / r["wall_seconds"], 1),
        "row_p50_ms": s.p50_ms,
        "row_p99_ms": s.p99_ms,
        "failed": r["failed"],
        "client_cpu": round(r["cpu_seconds"] / r["wall_seconds"], 3),
    }


def streams_in_process(step: Path, n: int, seconds: float, batched: bool) -> dict[str, Any]:
    """N independent StreamingClassifiers driven in turn by one thread (or, batched, one with N streams)."""
    images = mnist.load_split(mnist.locate(None), "test").images[:n].astype(np.float32) / 255
    runners = [StreamingClassifier(step, batch=n)] if batched else [StreamingClassifier(step) for _ in range(n)]
    times: list[float] = []
    rows = 0
    stop = time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < stop:
        for r in runners:
            r.reset()
        for t in range(ROWS):
            for k, r in enumerate(runners):
                a = time.perf_counter()
                r.push(images[:, t] if batched else images[k, t])
                times.append((time.perf_counter() - a) * 1000)
            rows += n
    wall = time.perf_counter() - t0
    s = summarize(np.asarray(times))
    return {
        "streams": n,
        "rows_per_s": round(rows / wall, 1),
        "push_p50_ms": s.p50_ms,
        "push_p99_ms": s.p99_ms,
        "runners": "one StreamingClassifier with N streams" if batched else "N StreamingClassifiers, one thread",
    }


def cluster_helpers() -> Any:
    """bench/cluster.py's process-tree CPU reader and wrk driver (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "cluster.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def cpu_per_request(url: str, pid: int, image: np.ndarray, rate: float, seconds: float, helpers: Any) -> dict[str, Any]:
    """The server's whole process tree's CPU (from /proc) over a fixed number of requests at a fixed rate."""
    before = helpers.tree_cpu_seconds(pid)
    run = run_http(parse_url(url), image, rate, seconds, 16, 1)
    used = helpers.tree_cpu_seconds(pid) - before
    return {
        "rate": rate,
        "requests": run.n,
        "cpu_us_per_request": round(used / max(run.n, 1) * 1e6, 1),
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
    }


def main() -> None:
    from edge_lstm.serve.workers import default_workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("step", type=Path, nargs="?", default=contract.DEFAULT_STEP_MODEL)
    parser.add_argument("--bound", type=float, default=10.0, help="p99 latency bound, ms")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each Poisson run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.json")
    args = parser.parse_args()
    for f in (args.model, args.step):
        if not f.is_file():
            sys.exit(f"error: {f} not found (edge-lstm export; edge-lstm export --streaming)")
    helpers = cluster_helpers()
    image = mnist.load_split(mnist.locate(None), "test").images[0]
    workers = default_workers()
    keys = ("batching", "workers_1", "no_batching", "fastapi", "triton")
    ports = {k: free_port() for k in keys}
    url = {k: f"http://127.0.0.1:{p}/v2/models/edge_lstm" for k, p in ports.items()}
    health = {k: f"http://127.0.0.1:{p}/v2/health/ready" for k, p in ports.items()}
    cli = [sys.executable, "-m", "edge_lstm", "serve"]
    report: dict[str, Any] = {
        "command": "python bench/serve.py",
        "bound_ms": args.bound,
        "seconds_per_run": args.seconds,
        "workers_default": workers,
    }
    with ExitStack() as stack:
        pids = {
            "batching": start(
                [*cli, str(args.model), str(args.step), "--port", str(ports["batching"])], health["batching"], stack
            ),
            "workers_1": start(
                [*cli, str(args.model), str(args.step), "--workers", "1", "--port", str(ports["workers_1"])],
                health["workers_1"],
                stack,
            ),
            "no_batching": start(
                [*cli, str(args.model), "--no-batching", "--workers", "1", "--port", str(ports["no_batching"])],
                health["no_batching"],
                stack,
            ),
            "fastapi": start(
                [sys.executable, str(ROOT / "bench" / "fastapi_baseline.py"), str(args.model), str(ports["fastapi"])],
                f"http://127.0.0.1:{ports['fastapi']}/health",
                stack,
            ),
            # The real Triton (tritonserver of the nvidia-pytriton wheel, Python backend running the same files)
            "triton": start(
                [*cli, str(args.model), str(args.step), "--triton", "--port", str(ports["triton"])],
                health["triton"],
                stack,
            ),
        }
        clf = Classifier(args.model)
        seconds, n_min = args.seconds, 100

        def oip(key: str) -> Any:
            e = parse_url(url[key])
            return lambda rate: run_http(e, image, rate, seconds, 64, n_min, args.bound)

        body = json.dumps({"image": (image.astype(np.float32) / 255).tolist()}).encode()
        fastapi_request = http_request(
            "127.0.0.1", ports["fastapi"], "/predict", body, {"Content-Type": "application/json"}
        )
        for key in (
            "batching",
            "workers_1",
            "no_batching",
            "triton",
        ):  # warm-up, not kept (Triton's stub is slow at first)
            run_http(parse_url(url[key]), image, 200.0, 2.0, 64, 1)
        searches = [
            search(f"edge-lstm serve (dynamic batching, {workers} workers: the default here)", oip("batching")),
            search("edge-lstm serve --workers 1", oip("workers_1")),
            search("edge-lstm serve --no-batching --workers 1", oip("no_batching")),
            search(
                "hand-written FastAPI (bench/fastapi_baseline.py)",
                lambda rate: run_request(
                    "fastapi", "127.0.0.1", ports["fastapi"], fastapi_request, rate, seconds, 64, n_min, args.bound
                ),
            ),
            search("Triton (tritonserver, Python backend: edge-lstm serve --triton)", oip("triton")),
            search(
                "in-process runner (no HTTP, one worker)",
                lambda rate: run_in_process(str(args.model), clf.logits, image, rate, seconds, n_min, args.bound),
            ),
        ]
        report["max_rate"] = searches
        print("wrk", file=sys.stderr, flush=True)
        report["wrk"] = {  # the second, independent client: C, closed loop
            key: [helpers.wrk(url[key], image, c, seconds) for c in (1, 16, 64)]
            for key in ("batching", "workers_1", "triton")
        }
        print("cpu per request", file=sys.stderr, flush=True)
        report["cpu_per_request"] = {
            key: [cpu_per_request(url[key], pids[key], image, rate, 4.0, helpers) for rate in (500.0, 1000.0)]
            for key in ("workers_1", "batching", "triton")
        }
        low: dict[str, list[ServerRun]] = {"server_http_binary": [], "in_process": [], "triton": []}
        for _ in range(3):  # alternated, three times: low-load p50 of the servers against the runner
            low["server_http_binary"].append(oip("batching")(50.0))
            low["in_process"].append(run_in_process(str(args.model), clf.logits, image, 50.0, seconds, n_min))
            low["triton"].append(oip("triton")(50.0))
        report["low_load_50_per_s"] = {k: [r.to_dict() for r in v] for k, v in low.items()}
        host, port = "127.0.0.1", ports["batching"]
        streams = []
        for n in (1, 16, 256):
            print(f"streams: {n}", file=sys.stderr, flush=True)
            streams.append(
                {
                    "http": streams_over_http(host, port, "edge_lstm_step", n, seconds),
                    "triton_http": streams_over_http(host, ports["triton"], "edge_lstm_step", n, seconds),
                    "in_process_independent": streams_in_process(args.step, n, seconds, batched=False),
                    "in_process_batched": streams_in_process(args.step, n, seconds, batched=True),
                }
            )
        report["streams"] = streams
    rates = {s["target"]: s["max_rate"] for s in searches}
    a, one, b, c, t = (rates[s["target"]] or 0 for s in searches[:5])
    p50 = {k: statistics.median(r.p50_ms or 0 for r in v) for k, v in low.items()}
    cpu_1000 = report["cpu_per_request"]["workers_1"][1]["cpu_us_per_request"]
    wrk16 = {k: (v[1] or {}).get("requests_per_s") or 0 for k, v in report["wrk"].items()}
    report["targets"] = {
        "batching_vs_fastapi": {"value": round(a / c, 2) if c else None, "target": ">= 2"},
        "batching_vs_no_batching": {"value": round(one / b, 2) if b else None, "target": ">= 1.5 (both one worker)"},
        "http_p50_added_ms": {"value": round(p50["server_http_binary"] - p50["in_process"], 3), "target": "<= 0.5"},
        "low_load_p50_vs_triton_ms": {
            "value": [round(p50["server_http_binary"], 3), round(p50["triton"], 3)],
            "target": "edge-lstm's <= Triton's",
        },
        "max_rate_vs_triton": {"value": round(a / t, 2) if t else None, "target": ">= 1"},
        "wrk_16_vs_triton": {
            "value": round(wrk16["batching"] / wrk16["triton"], 2) if wrk16["triton"] else None,
            "target": ">= 1",
        },
        "workers_vs_one": {
            "value": {
                "max_rate": round(a / one, 2) if one else None,
                "wrk_16": round(wrk16["batching"] / wrk16["workers_1"], 2) if wrk16["workers_1"] else None,
            },
            "target": f"reported ({workers} workers against 1; the load generator shares the cores)",
        },
        "cpu_us_per_request_1000_per_s": {"value": cpu_1000, "target": "<= 250 (--workers 1)"},
    }
    report["environment"] = describe()
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"max_rate": rates, "targets": report["targets"]}, indent=1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stream-client"]:
        stream_client_main()
    else:
        main()
