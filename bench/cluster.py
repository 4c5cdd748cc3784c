"""Past one machine, measured in ONE run on this machine: edge-lstm serve as one process and with two
workers; the same app on
Ray Serve's fast path (HAProxy ingress) with 1 and 2 replicas, and on Ray's Python proxy for reference
(each `edge-lstm serve --ray local` with a local Ray cluster of its own, on loopback); the real Triton
(`edge-lstm serve --triton`: tritonserver, Python backend). For each: the highest Poisson rate with p99
under the bound (the same bound for all), p50 at low load, the CPU its processes use per request at a
fixed rate, and a closed-loop cross-check by a second, independent client (wrk, 16 connections).
Then stream rows/s for 16 streams on each, Ray Data's pictures/s against `predict`'s, and the capacity
plan those numbers give.

    pip install -e '.[ray]'; pip install --no-deps nvidia-pytriton==0.7.0; apt-get install wrk
    python bench/cluster.py [MODEL] [STEP] [--bound 10] [--seconds 5] [--pictures 2000]
    # -> bench/results/cluster.json (about 15 minutes)

On 2 cores every stack's processes (Ray's GCS, raylet, controller, HAProxy; Triton's server and its
Python stubs) share the cores with the load generator: that is part of what is measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge_lstm import contract
from edge_lstm.bench.oip import binary_request, parse_url
from edge_lstm.bench.server import max_rate, run_http
from edge_lstm.data import mnist
from edge_lstm.data.pictures import render
from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent
START = 100.0
DAY = 86_400
CPU_RATE = 300.0  # requests/s at which every stack's CPU per request is read (the Python proxy: what it holds)


def serve_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) of `root` and every process below it (Ray's and Triton's children)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(pid)] = int(fields[1])
        cpu[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo += [c for c, parent in parents.items() if parent == p]
    return total


class Stack:
    """One server under test, started as its own process tree by the edge-lstm CLI."""

    def __init__(self, name: str, cmd: list[str], port: int, ready_s: float = 240) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}/v2/models/edge_lstm"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.time() + ready_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"{name} did not start: {self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            self.stop()
            sys.exit(f"{name} was not ready in {ready_s:g} s")
        time.sleep(12)  # HAProxy takes a replica in after two health checks, 5 s apart

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()


def wrk(url: str, image: np.ndarray, connections: int, seconds: float) -> dict[str, Any] | None:
    """The second, independent client: wrk (C, closed loop) posting the same binary request."""
    if shutil.which("wrk") is None:
        return None
    body, headers = binary_request(image[None].astype(np.float32) / 255)
    folder = Path(tempfile.mkdtemp(prefix="edge-lstm-wrk-"))
    (folder / "body").write_bytes(body)
    lua = [
        'wrk.method = "POST"',
        f'local f = io.open("{folder / "body"}", "rb")',
        'wrk.body = f:read("*all")',
        "f:close()",
    ] + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    (folder / "post.lua").write_text("\n".join(lua) + "\n")
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(folder / "post.lua"),
            url + "/infer",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    shutil.rmtree(folder, ignore_errors=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "connections": connections,
        "requests_per_s": float(rate.group(1)) if rate else None,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 3) if p99 else None,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def measure(stack: Stack, image: np.ndarray, bound: float, seconds: float, sb: Any) -> dict[str, Any]:
    endpoint = parse_url(stack.url)
    run_http(endpoint, image, 200.0, 2.0, 64, 1)  # warm-up, not kept (Triton's Python stub is slow at first)
    print(f"{stack.name}: max rate", file=sys.stderr, flush=True)
    best, trail = max_rate(lambda r: run_http(endpoint, image, r, seconds, 64, 100, bound), START)
    low = [run_http(endpoint, image, 50.0, seconds, 64, 100) for _ in range(2)]
    rate = CPU_RATE if (best and best.rate >= CPU_RATE) else 0.8 * (best.rate if best else START)
    before, t0 = tree_cpu_seconds(stack.proc.pid), time.perf_counter()
    at_rate = run_http(endpoint, image, rate, seconds, 64, 100)
    used = tree_cpu_seconds(stack.proc.pid) - before
    wall = time.perf_counter() - t0
    print(f"{stack.name}: streams", file=sys.stderr, flush=True)
    return {
        "target": stack.name,
        "max_rate": best.rate if best else None,
        "best": best.to_dict() if best else None,
        "trail": [t.to_dict() for t in trail],
        "low_load_p50_ms": statistics.median(r.p50_ms or 0 for r in low),
        "cpu": {
            "rate": rate,
            "answered": at_rate.n,
            "cores": round(used / wall, 3),
            "cpu_ms_per_request": round(used / max(at_rate.n, 1) * 1000, 3),
            "note": "the server's whole process tree (Ray: GCS, raylet, controller, HAProxy, replicas, stores; "
            "Triton: tritonserver and its Python stubs), read from /proc; the load generator apart",
        },
        "wrk_16_connections": wrk(stack.url, image, 16, seconds),
        "streams_16": sb.streams_over_http("127.0.0.1", stack.port, "edge_lstm_step", 16, seconds),
    }


def bulk(model: Path, n: int) -> dict[str, Any]:
    """Pictures/s: `edge-lstm predict` (one process) against `predict --ray` (2 actors) on the same folder."""
    images = mnist.load_split(mnist.locate(None), "test").images[:n]
    folder = Path(tempfile.mkdtemp(prefix="edge-lstm-bulk-"))
    for i, picture in enumerate(render("photo_uneven", images)):
        Image.fromarray(picture).save(folder / f"{i:05d}.png")
    files = sorted(str(p) for p in folder.iterdir())
    cli = [sys.executable, "-m", "edge_lstm", "predict", str(model)]
    t0 = time.perf_counter()
    subprocess.run([*cli, *files], capture_output=True, check=True)
    single = time.perf_counter() - t0
    out = folder / "results.csv"
    t0 = time.perf_counter()
    subprocess.run(
        [*cli, str(folder), "--ray", "local", "--out", str(out), "--actors", "2"], capture_output=True, check=True
    )
    ray_data = time.perf_counter() - t0
    rows = out.read_text().count("\n") - 1
    return {
        "pictures": n,
        "predict_seconds": round(single, 2),
        "predict_pictures_per_s": round(n / single, 1),
        "ray_data_seconds": round(ray_data, 2),
        "ray_data_pictures_per_s": round(n / ray_data, 1),
        "ray_data_rows": rows,
        "note": "whole commands, start-up included (Ray Data: starting a local cluster and 2 actors)",
    }


def plan(rows: dict[str, dict[str, Any]], pictures: dict[str, Any], bound: float) -> dict[str, Any]:
    """Machines for 10k/100k/1M requests/s and 100M pictures a day, and stream rows per machine, from
    this machine's numbers (every stack under the same p99 bound)."""
    out: dict[str, Any] = {
        "assumptions": [
            "machines like this one (2 cores); a request is one picture, binary tensors",
            f"throughput adds up across machines (requests spread evenly by a load balancer); the per-machine rate "
            f"is the measured highest Poisson rate with p99 <= {bound:g} ms",
            "Ray's cost across machines is not measured (no second machine here): one machine's numbers, multiplied",
            "pictures a day: the average rate (100M / 86,400 s = 1,157/s), "
            "bulk classification at the measured pictures/s",
        ]
    }
    for rate in (10_000, 100_000, 1_000_000):
        out[f"{rate:,} requests/s"] = {
            k: math.ceil(rate / r["max_rate"]) if r.get("max_rate") else None for k, r in rows.items()
        }
    avg = 100e6 / DAY
    out["100M pictures a day"] = {
        "average rate": round(avg, 1),
        "machines, predict (one process each)": math.ceil(avg / pictures["predict_pictures_per_s"]),
        "machines, Ray Data (2 actors each)": math.ceil(avg / pictures["ray_data_pictures_per_s"]),
        "machines, the best server above at its max rate": min(
            math.ceil(avg / r["max_rate"]) for r in rows.values() if r.get("max_rate")
        ),
    }
    out["stream rows/s per machine, 16 streams"] = {k: r["streams_16"]["rows_per_s"] for k, r in rows.items()}
    return out


SINGLE, TRITON = "edge-lstm serve (one process)", "Triton (tritonserver, Python backend)"
WORKERS2 = "edge-lstm serve --workers 2"
RAY1, RAY2 = "Ray Serve fast path (HAProxy), 1 replica", "Ray Serve fast path (HAProxy), 2 replicas"
RAY2_REPLICA = "Ray Serve fast path, 2 replicas, --ray-streams replica (streams only)"
RAY_PYTHON = "Ray Serve, Python proxy, 1 replica (reference)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("step", type=Path, nargs="?", default=contract.DEFAULT_STEP_MODEL)
    parser.add_argument("--bound", type=float, default=10.0, help="p99 bound (ms), the same for every stack")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pictures", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = parser.parse_args()
    for f in (args.model, args.step):
        if not f.is_file():
            sys.exit(f"error: {f} not found (edge-lstm export; edge-lstm export --streaming)")
    sb = serve_bench()
    image = mnist.load_split(mnist.locate(None), "test").images[0]
    cli = [sys.executable, "-m", "edge_lstm", "serve", str(args.model), str(args.step)]
    configs = {
        SINGLE: ["--workers", "1"],
        WORKERS2: ["--workers", "2"],
        TRITON: ["--triton"],
        RAY1: ["--ray", "local", "--replicas", "1"],
        RAY2: ["--ray", "local", "--replicas", "2"],
        RAY2_REPLICA: ["--ray", "local", "--replicas", "2", "--ray-streams", "replica"],
        RAY_PYTHON: ["--ray", "local", "--replicas", "1", "--ray-proxy", "python"],
    }
    rows: dict[str, dict[str, Any]] = {}
    for name, extra in configs.items():
        port = sb.free_port()
        stack = Stack(name, [*cli, *extra, "--port", str(port)], port)
        try:
            if name == RAY2_REPLICA:
                rows[name] = {
                    "target": name,
                    "streams_16": sb.streams_over_http("127.0.0.1", port, "edge_lstm_step", 16, args.seconds),
                }
            else:
                rows[name] = measure(stack, image, args.bound, args.seconds, sb)
        finally:
            stack.stop()
    pictures = bulk(args.model, args.pictures)
    single = rows[SINGLE]

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 3) if a and b else None

    targets = {
        "ray_2_replicas_rate_vs_single": {
            "value": ratio(rows[RAY2]["max_rate"], single["max_rate"]),
            "target": ">= 0.5",
        },
        "ray_low_load_p50_ms": {"value": {k: rows[k]["low_load_p50_ms"] for k in (RAY1, RAY2)}, "target": "<= 3"},
        "ray_streams_vs_single": {
            "value": ratio(rows[RAY2]["streams_16"]["rows_per_s"], single["streams_16"]["rows_per_s"]),
            "replica_only_streams": ratio(
                rows[RAY2_REPLICA]["streams_16"]["rows_per_s"], single["streams_16"]["rows_per_s"]
            ),
            "target": ">= 0.5 (with the store: a killed replica loses nothing)",
        },
        "triton_rate_vs_single": {"value": ratio(rows[TRITON]["max_rate"], single["max_rate"])},
    }
    served = {k: v for k, v in rows.items() if k != RAY2_REPLICA}
    report = {
        "command": "python bench/cluster.py",
        "bound_ms": args.bound,
        "seconds_per_run": args.seconds,
        "stacks": rows,
        "bulk": pictures,
        "targets": targets,
        "capacity_plan": plan(served, pictures, args.bound),
        "environment": describe(),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({"targets": targets, "capacity_plan": report["capacity_plan"]}, indent=1))


if __name__ == "__main__":
    main()
