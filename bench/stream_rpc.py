"""Stream rows per second over the streaming connections of `edge-lstm serve`: the WebSocket route and
the protocol's gRPC ModelStreamInfer, beside one HTTP request per row (bench/serve.py's client), in ONE
run against one server process on loopback.

    python bench/stream_rpc.py [MODEL] [STEP] [--seconds 5] [--clients 2]   # -> bench/results/stream_rpc.json

Each stream sends one row, waits for its answer, sends the next (closed loop), 28 rows a sequence over
and over. The streams are split over `--clients` processes (each one WebSocket or one gRPC stream
carrying its share of the streams), since one Python client process can be the limit on these 2
cores: their CPU is reported. The WebSocket rows are `edge-lstm bench URL --streams N`'s own
(edge_lstm/bench/streamload.py); gRPC's client is here (grpcio's asyncio API, raw tensors). The
WebSocket rows are measured again by a second, independent client, bench/ws_client.mjs (Node.js and
its `ws` package, installed from npm into ~/.cache once; skipped without node and npm). The server
shares the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


async def drive_grpc(address: str, images: np.ndarray, first: int, seconds: float) -> list[float]:
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    latencies: list[float] = []
    rows = images.astype("<f4") / 255
    async with grpc.aio.insecure_channel(address) as channel:
        call = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer()
        sent: dict[int, float] = {}
        step = dict.fromkeys(range(len(images)), 0)

        def request(k: int) -> Any:
            t = step[k]
            r = service_pb2.ModelInferRequest(model_name="edge_lstm_step", id=str(k))
            r.inputs.add(name="row", datatype="FP32", shape=[1, 28])
            r.raw_input_contents.append(rows[k, t].tobytes())
            r.parameters["sequence_id"].int64_param = first + k
            r.parameters["sequence_start"].bool_param = t == 0
            r.parameters["sequence_end"].bool_param = t == 27
            return r

        stop = time.perf_counter() + seconds
        for k in range(len(images)):
            sent[k] = time.perf_counter()
            await call.write(request(k))
        while sent:
            response = await call.read()
            if response.error_message:
                raise RuntimeError(response.error_message)
            k = int(response.infer_response.id)
            now = time.perf_counter()
            latencies.append((now - sent.pop(k)) * 1000)
            step[k] = (step[k] + 1) % 28
            if now < stop:
                sent[k] = now
                await call.write(request(k))
        await call.done_writing()
    return latencies


def client_main() -> None:
    """One client process: its job as its last argument, its latencies and CPU in the job's result file."""
    job = json.loads(sys.argv[-1])
    from edge_lstm.data import mnist

    images = mnist.load_split(mnist.locate(None), "test").images[job["first"] : job["first"] + job["streams"]]
    t0 = time.perf_counter()
    latencies = asyncio.run(drive_grpc(job["target"], images, job["first"] + 1, job["seconds"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(job["result"]).write_text(
        json.dumps(
            {"latency_ms": latencies, "wall": time.perf_counter() - t0, "cpu_seconds": usage.ru_utime + usage.ru_stime}
        )
    )


def run(transport: str, target: str, streams: int, clients: int, seconds: float) -> dict[str, Any]:
    from edge_lstm.bench.streamload import pooled, run_clients, split

    jobs = [
        {"transport": transport, "target": target, "streams": n, "first": first, "seconds": seconds}
        for n, first in split(streams, clients)
    ]
    results = run_clients([sys.executable, __file__, "--client"], jobs, seconds + 120)
    return {"transport": transport, "streams": streams, "clients": clients, **pooled(results)}


WS_PACKAGE = "ws@8.18.3"  # Node's most used WebSocket library, for the second client


def node_ws() -> Path | None:
    """A folder holding Node's `ws` (npm install, once, into ~/.cache); None without node and npm."""
    import shutil
    import subprocess

    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    folder = Path.home() / ".cache" / "edge-lstm" / "node-ws"
    if not (folder / "node_modules" / "ws").is_dir():
        subprocess.run(
            ["npm", "install", "--prefix", str(folder), "--no-save", "--no-audit", "--no-fund", WS_PACKAGE],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return folder / "node_modules"


def run_node(url: str, streams: int, clients: int, seconds: float, modules: Path) -> dict[str, Any]:
    """The WebSocket rows again with bench/ws_client.mjs (Node, `ws`): `clients` processes, one socket each."""
    import os
    import subprocess

    from edge_lstm.bench.streamload import pooled, split

    env = {**os.environ, "NODE_PATH": str(modules)}
    procs = [
        subprocess.Popen(
            ["node", str(ROOT / "bench" / "ws_client.mjs"), url, str(n), str(seconds), str(first + 1)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n, first in split(streams, clients)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=seconds + 120)
        if p.returncode != 0:
            raise RuntimeError(f"bench/ws_client.mjs: {(err.strip().splitlines() or ['no output'])[-1]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "transport": "websocket, second client (Node.js ws: bench/ws_client.mjs)",
        "streams": streams,
        "clients": clients,
        **pooled(results),
    }


def main() -> None:
    from edge_lstm import contract
    from edge_lstm.bench.oip import parse_url
    from edge_lstm.bench.streamload import run_streams
    from edge_lstm.environment import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("step", type=Path, nargs="?", default=contract.DEFAULT_STEP_MODEL)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="the server's --workers (default: its own)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "stream_rpc.json")
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    sb = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(sb)  # type: ignore[union-attr]
    from contextlib import ExitStack

    port, grpc_port = sb.free_port(), sb.free_port()
    modules = node_ws()
    rows = []
    with ExitStack() as stack:
        sb.start(
            [
                sys.executable,
                "-m",
                "edge_lstm",
                "serve",
                str(args.model),
                str(args.step),
                "--port",
                str(port),
                "--grpc-port",
                str(grpc_port),
                *(["--workers", str(args.workers)] if args.workers else []),
            ],
            f"http://127.0.0.1:{port}/v2/health/ready",
            stack,
        )
        step_url = parse_url(f"http://127.0.0.1:{port}/v2/models/edge_lstm_step")
        for streams in (16, 256):
            print(f"streams: {streams}", file=sys.stderr, flush=True)
            ws = run_streams(step_url, streams, args.seconds, args.clients)  # `edge-lstm bench URL --streams N`
            rows.append({"transport": "websocket", **ws.to_dict()})
            if modules is not None:
                rows.append(
                    run_node(
                        f"ws://127.0.0.1:{port}/v2/models/edge_lstm_step/stream",
                        streams,
                        args.clients,
                        args.seconds,
                        modules,
                    )
                )
            rows.append(run("grpc", f"127.0.0.1:{grpc_port}", streams, args.clients, args.seconds))
            http = sb.streams_over_http("127.0.0.1", port, "edge_lstm_step", streams, args.seconds)
            rows.append({"transport": "http (one request per row, bench/serve.py's client)", **http})
    command = "python bench/stream_rpc.py" + (f" --workers {args.workers}" if args.workers else "")
    report = {
        "command": command,
        "workers": args.workers or "default",
        "seconds": args.seconds,
        "rows": rows,
        "environment": describe(),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in rows:
        print(
            f"{r['transport'][:10]:>10} {r['streams']:>4} streams: {r['rows_per_s']:>9,.0f} rows/s, "
            f"row p50 {r['row_p50_ms']:.2f} ms, p99 {r['row_p99_ms']:.2f} ms"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main()
    else:
        main()
