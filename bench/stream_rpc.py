"""Stream rows per second over the streaming connections of `edge-lstm serve`: the WebSocket route and
the protocol's gRPC ModelStreamInfer, beside one HTTP request per row (bench/serve.py's client), in ONE
run against one server on loopback; the real Triton's ModelStreamInfer on the same files (`edge-lstm
serve --triton`) and a bare grpcio echo server (this file's: the same service answering every row with
fixed logits, no model; what Python's gRPC server moves at most here) beside it, in the same run.

    python bench/stream_rpc.py [MODEL] [STEP] [--seconds 5] [--clients 2]   # -> bench/results/stream_rpc.json

Each stream sends one row, waits for its answer, sends the next (closed loop), 28 rows a sequence over
and over. The streams are split over `--clients` processes (each one WebSocket or one gRPC stream
carrying its share of the streams), since one Python client process can be the limit on these 2
cores: their CPU is reported. The WebSocket rows are `edge-lstm bench URL --streams N`'s own
(edge_lstm/bench/streamload.py); gRPC's client is here (grpcio's asyncio API, raw tensors). The
WebSocket rows are measured again by a second, independent client, bench/ws_client.mjs (Node.js and
its `ws` package), and every gRPC row by bench/grpc_client.mjs (Node.js and @grpc/grpc-js, reading the
protocol from tritonclient's own descriptors); both installed from npm into ~/.cache once, skipped
without node and npm. The servers share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
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
    latencies = asyncio.run(drive_grpc(job["target"], images, job["first"] + job["ids"], job["seconds"]))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    Path(job["result"]).write_text(
        json.dumps(
            {"latency_ms": latencies, "wall": time.perf_counter() - t0, "cpu_seconds": usage.ru_utime + usage.ru_stime}
        )
    )


def run(transport: str, target: str, streams: int, clients: int, seconds: float, ids: int = 1) -> dict[str, Any]:
    """`ids`: the first sequence id (each phase and client its own: a client stopped at the time limit leaves
    its sequences open, and Triton crashed on a START of an id whose sequence never ended)."""
    from edge_lstm.bench.streamload import pooled, run_clients, split

    jobs = [
        {"transport": transport, "target": target, "streams": n, "first": first, "seconds": seconds, "ids": ids}
        for n, first in split(streams, clients)
    ]
    results = run_clients([sys.executable, __file__, "--client"], jobs, seconds + 120)
    return {"transport": transport, "streams": streams, "clients": clients, **pooled(results)}


WS_PACKAGE = "ws@8.18.3"  # Node's most used WebSocket library, for the second client
GRPC_PACKAGES = ("@grpc/grpc-js@1.14.3", "@grpc/proto-loader@0.8.0")  # gRPC's own Node.js client


def node_modules(folder_name: str, packages: tuple[str, ...], probe: str) -> Path | None:
    """A folder holding these npm packages (npm install, once, into ~/.cache); None without node and npm."""
    import shutil
    import subprocess

    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    folder = Path.home() / ".cache" / "edge-lstm" / folder_name
    if not (folder / "node_modules" / probe).is_dir():
        subprocess.run(
            ["npm", "install", "--prefix", str(folder), "--no-save", "--no-audit", "--no-fund", *packages],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return folder / "node_modules"


def descriptors(path: Path) -> Path:
    """The protocol's FileDescriptorSet (tritonclient's grpc_service.proto and model_config.proto), for
    the Node.js client: the same definitions tritonclient itself was built from."""
    from google.protobuf import descriptor_pb2
    from tritonclient.grpc import model_config_pb2, service_pb2

    found = descriptor_pb2.FileDescriptorSet()
    for module in (model_config_pb2, service_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        found.file.append(proto)
    path.write_bytes(found.SerializeToString())
    return path


def echo_server(port: int) -> None:
    """The transport's own ceiling: grpcio's asyncio server (what `edge-lstm serve --grpc-port` runs on)
    with the same service, answering every row at once with fixed logits (no model, no state)."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    logits = np.zeros((1, 10), "<f4").tobytes()

    class Echo(service_pb2_grpc.GRPCInferenceServiceServicer):
        async def ModelStreamInfer(self, requests: Any, context: Any) -> Any:
            async for r in requests:
                out = service_pb2.ModelInferResponse.InferOutputTensor(name="logits", datatype="FP32", shape=[1, 10])
                response = service_pb2.ModelInferResponse(
                    model_name=r.model_name, id=r.id, outputs=[out], raw_output_contents=[logits]
                )
                yield service_pb2.ModelStreamInferResponse(infer_response=response)

        async def ServerReady(self, request: Any, context: Any) -> Any:
            return service_pb2.ServerReadyResponse(ready=True)

    async def serve() -> None:
        server = grpc.aio.server()
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Echo(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(serve())


def node_clients(script: str, modules: Path, argv: Any, streams: int, clients: int, seconds: float) -> dict[str, Any]:
    """`clients` processes of a Node.js client script, the streams split over them (`argv(n, first)`: each
    one's arguments), their results pooled as the Python clients' are."""
    import os
    import subprocess

    from edge_lstm.bench.streamload import pooled, split

    env = {**os.environ, "NODE_PATH": str(modules)}
    procs = [
        subprocess.Popen(
            ["node", str(ROOT / "bench" / script), *argv(n, first)],
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
        if p.returncode != 0 or not out.strip():
            raise RuntimeError(f"bench/{script}: {(err.strip().splitlines() or ['no output'])[-1]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return {"streams": streams, "clients": clients, **pooled(results)}


def run_node_grpc(
    address: str, streams: int, clients: int, seconds: float, modules: Path, proto: Path, label: str, ids: int = 1
) -> dict[str, Any]:
    """gRPC rows again with bench/grpc_client.mjs (Node.js, @grpc/grpc-js): one ModelStreamInfer call each."""

    def argv(n: int, first: int) -> list[str]:
        return [address, "edge_lstm_step", str(n), str(seconds), str(first + ids), str(proto)]

    measured = node_clients("grpc_client.mjs", modules, argv, streams, clients, seconds)
    return {"transport": f"{label}, second client (Node.js @grpc/grpc-js: bench/grpc_client.mjs)", **measured}


def run_node(url: str, streams: int, clients: int, seconds: float, modules: Path) -> dict[str, Any]:
    """The WebSocket rows again with bench/ws_client.mjs (Node, `ws`): `clients` processes, one socket each."""
    measured = node_clients(
        "ws_client.mjs",
        modules,
        lambda n, first: [url, str(n), str(seconds), str(first + 1)],
        streams,
        clients,
        seconds,
    )
    return {"transport": "websocket, second client (Node.js ws: bench/ws_client.mjs)", **measured}


def measured(label: str, streams: int, measure: Any) -> dict[str, Any]:
    """One row of the table; a server that failed under the load is a row saying so (the run goes on)."""
    try:
        return {**measure(), "transport": label}
    except (RuntimeError, OSError) as e:
        print(f"{label}, {streams} streams: {e}", file=sys.stderr, flush=True)
        return {"transport": label, "streams": streams, "failed": str(e)[:300]}


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
    triton_port, triton_grpc, echo_port = sb.free_port(), sb.free_port(), sb.free_port()
    modules = node_modules("node-ws", (WS_PACKAGE,), "ws")
    grpc_modules = node_modules("node-grpc", GRPC_PACKAGES, "@grpc/grpc-js")
    import tempfile

    proto = descriptors(Path(tempfile.mkdtemp()) / "triton.desc")
    rows = []
    with ExitStack() as stack:
        import multiprocessing

        echo = multiprocessing.get_context("spawn").Process(target=echo_server, args=(echo_port,), daemon=True)
        echo.start()
        stack.callback(echo.terminate)
        serve = [sys.executable, "-m", "edge_lstm", "serve", str(args.model), str(args.step)]
        triton = ["--triton", "--port", str(triton_port), "--grpc-port", str(triton_grpc)]
        sb.start([*serve, *triton], f"http://127.0.0.1:{triton_port}/v2/health/ready", stack)
        ours = ["--port", str(port), "--grpc-port", str(grpc_port)]
        workers = ["--workers", str(args.workers)] if args.workers else []
        sb.start([*serve, *ours, *workers], f"http://127.0.0.1:{port}/v2/health/ready", stack)
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
            grpc_targets = {
                "grpc": f"127.0.0.1:{grpc_port}",
                "grpc: Triton (edge-lstm serve --triton, the same files)": f"127.0.0.1:{triton_grpc}",
                "grpc: bare grpcio echo (no model: the transport's ceiling)": f"127.0.0.1:{echo_port}",
            }
            for label, address in grpc_targets.items():
                rows.append(
                    measured(
                        label, streams, functools.partial(run, "grpc", address, streams, args.clients, args.seconds)
                    )
                )
                if grpc_modules is not None:
                    rows.append(
                        measured(
                            f"{label}, second client (Node.js @grpc/grpc-js: bench/grpc_client.mjs)",
                            streams,
                            functools.partial(
                                run_node_grpc,
                                address,
                                streams,
                                args.clients,
                                args.seconds,
                                grpc_modules,
                                proto,
                                label,
                                1 + 1000 * streams + 500,
                            ),
                        )
                    )
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
        if "failed" in r and "rows_per_s" not in r:
            print(f"{r['transport'][:60]:>60} {r['streams']:>4} streams: failed: {r['failed'][:80]}")
            continue
        print(
            f"{r['transport'][:60]:>60} {r['streams']:>4} streams: {r['rows_per_s']:>9,.0f} rows/s, "
            f"row p50 {r['row_p50_ms']:.2f} ms, p99 {r['row_p99_ms']:.2f} ms"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main()
    else:
        main()
