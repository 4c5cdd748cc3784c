"""Past one machine, measured in ONE run on this machine: edge-lstm serve as one process, the same app
on Ray Serve with 1 and 2 replicas (a local Ray cluster on loopback), each at its highest Poisson rate
with p99 under the bound and at low load; what Ray's own processes cost; stream rows through Ray;
Ray Data's pictures/s against `predict`'s on the same folder; and the capacity plan those numbers give.

    pip install -e '.[ray]'
    python bench/cluster.py [MODEL] [STEP] [--bound 10] [--ray-bound 50] [--seconds 5] [--pictures 2000]
    # -> bench/results/cluster.json (about 12 minutes)

Ray Serve's own request path costs about 9 ms on this machine before any app runs (bench/ray_floor.py),
so its rows are searched under a bound of their own (--ray-bound); the plan says which bound each used.

On 2 cores Ray's processes (GCS, raylet, Serve controller and proxy) share the cores with the
replicas and the load generator: that is part of what is measured, and reported apart.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the local cluster on loopback (read at import)

import numpy as np
from PIL import Image

from edge_lstm import contract
from edge_lstm.bench.oip import parse_url
from edge_lstm.bench.server import max_rate, run_http
from edge_lstm.data import mnist
from edge_lstm.data.pictures import render
from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent
START = 100.0
DAY = 86_400


def serve_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def ray_cpu(seconds: float) -> dict[str, float]:
    """Cores used by Ray's processes over `seconds`, by role (from /proc: utime + stime)."""
    roles = {"replica": "ServeReplica", "proxy": "ProxyActor", "controller": "ServeController",
             "raylet": "raylet", "gcs": "gcs_server", "stores": "StoreActor"}  # fmt: skip

    def sample() -> dict[str, float]:
        out = dict.fromkeys(roles, 0.0)
        tick = os.sysconf("SC_CLK_TCK")
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            for role, marker in roles.items():
                if marker in cmd:
                    out[role] += (int(fields[11]) + int(fields[12])) / tick
                    break
        return out

    a = sample()
    time.sleep(seconds)
    b = sample()
    return {k: round((b[k] - a[k]) / seconds, 3) for k in roles}


def measure(name: str, url: str, image: np.ndarray, bound: float, seconds: float) -> dict[str, Any]:
    endpoint = parse_url(url)
    print(f"{name}: max rate", file=sys.stderr, flush=True)
    best, trail = max_rate(lambda r: run_http(endpoint, image, r, seconds, 64, 100, bound), START)
    low = [run_http(endpoint, image, 50.0, seconds, 64, 100) for _ in range(2)]
    return {
        "target": name, "max_rate": best.rate if best else None, "best": best.to_dict() if best else None,
        "trail": [t.to_dict() for t in trail], "low_load_p50_ms": statistics.median(r.p50_ms or 0 for r in low),
    }  # fmt: skip


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
        "pictures": n, "predict_seconds": round(single, 2), "predict_pictures_per_s": round(n / single, 1),
        "ray_data_seconds": round(ray_data, 2), "ray_data_pictures_per_s": round(n / ray_data, 1), "ray_data_rows": rows,
        "note": "whole commands, start-up included (Ray Data: starting a local cluster and 2 actors)",
    }  # fmt: skip


def plan(single: dict[str, Any], ray2: dict[str, Any], ray1: dict[str, Any], streams: dict[str, Any],
         pictures: dict[str, Any], bound: float, ray_bound: float) -> dict[str, Any]:  # fmt: skip
    """Machines for 10k/100k/1M requests/s and 100M pictures a day, from this machine's numbers."""
    per_node = {f"edge-lstm serve, one per 2-core machine (p99 <= {bound:g} ms)": single["max_rate"] or 0,
                f"Ray Serve, 2 replicas per 2-core machine (p99 <= {ray_bound:g} ms)": ray2["max_rate"] or 0}  # fmt: skip
    out: dict[str, Any] = {"assumptions": [
        "machines like this one (2 cores); a request is one picture, binary tensors",
        "throughput adds up across machines (requests spread evenly by a load balancer or Ray's proxies); "
        "the per-machine rate is the measured highest rate that kept p99 under the bound",
        "Ray's per-request cost on one machine is measured; across machines it is not (no second machine here)",
        "pictures a day: the average rate (100M / 86,400 s = 1,157/s), bulk classification at the measured pictures/s",
    ]}  # fmt: skip
    for rate in (10_000, 100_000, 1_000_000):
        out[f"{rate:,} requests/s"] = {k: math.ceil(rate / v) if v else None for k, v in per_node.items()}
    avg = 100e6 / DAY
    out["100M pictures a day"] = {
        "average rate": round(avg, 1),
        "machines, predict (one process each)": math.ceil(avg / pictures["predict_pictures_per_s"]),
        "machines, Ray Data (2 actors each)": math.ceil(avg / pictures["ray_data_pictures_per_s"]),
    }  # fmt: skip
    out["stream rows/s, one machine"] = streams
    out["ray per-request overhead at low load, ms"] = round(ray1["low_load_p50_ms"] - single["low_load_p50_ms"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("step", type=Path, nargs="?", default=contract.DEFAULT_STEP_MODEL)
    parser.add_argument("--bound", type=float, default=10.0)
    parser.add_argument("--ray-bound", type=float, default=50.0, help="p99 bound (ms) for the Ray Serve rows")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pictures", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    args = parser.parse_args()
    for f in (args.model, args.step):
        if not f.is_file():
            sys.exit(f"error: {f} not found (edge-lstm export; edge-lstm export --streaming)")
    sb = serve_bench()
    image = mnist.load_split(mnist.locate(None), "test").images[0]
    report: dict[str, Any] = {
        "command": "python bench/cluster.py",
        "bound_ms": args.bound,
        "ray_bound_ms": args.ray_bound,
    }
    with ExitStack() as stack:
        port = sb.free_port()
        sb.start([sys.executable, "-m", "edge_lstm", "serve", str(args.model), str(args.step), "--port", str(port)],
                 f"http://127.0.0.1:{port}/v2/health/ready", stack)  # fmt: skip
        single = measure("edge-lstm serve (one process)", f"http://127.0.0.1:{port}/v2/models/edge_lstm", image,
                         args.bound, args.seconds)  # fmt: skip
        single_streams = sb.streams_over_http("127.0.0.1", port, "edge_lstm_step", 16, args.seconds)
        stack.close()

        import ray

        from edge_lstm.cluster.ray_serve import Scaling, deploy, shutdown
        from edge_lstm.serve.config import ServeConfig

        ray.init(namespace="edge_lstm", include_dashboard=False, log_to_driver=False)
        rport = sb.free_port()
        config = ServeConfig(models=(("", args.model), ("", args.step)), port=rport)
        results = {}
        for replicas in (1, 2):
            url, names = deploy(config, Scaling(replicas=replicas, proxy_location="HeadOnly"))
            time.sleep(3)
            idle = ray_cpu(5.0)
            results[replicas] = measure(f"Ray Serve, {replicas} replica(s)", f"{url}/v2/models/edge_lstm", image,
                                        args.ray_bound, args.seconds)  # fmt: skip
            results[replicas]["ray_cores_idle"] = idle
        ray_streams = sb.streams_over_http("127.0.0.1", rport, "edge_lstm_step", 16, args.seconds)
        endpoint = parse_url(f"http://127.0.0.1:{rport}/v2/models/edge_lstm")
        rate = (results[2]["max_rate"] or 100) * 0.9
        cpu: dict[str, Any] = {}
        t = threading.Thread(target=lambda: cpu.update(ray_cpu(args.seconds - 1)))
        t.start()
        load = run_http(endpoint, image, rate, args.seconds, 64, 100).to_dict()
        t.join()
        per_request = {k: round(v / rate * 1000, 3) for k, v in cpu.items()}
        results[2]["ray_cores_under_load"] = {
            "rate": rate,
            "cores": cpu,
            "cpu_ms_per_request": per_request,
            "run": load,
        }
        shutdown(names, Scaling().store_shards)
        ray.shutdown()
    pictures = bulk(args.model, args.pictures)
    streams = {"edge-lstm serve": single_streams, "Ray Serve, 2 replicas": ray_streams}
    report.update({
        "single_process": single, "ray_1_replica": results[1], "ray_2_replicas": results[2], "streams_16": streams,
        "bulk": pictures, "capacity_plan": plan(single, results[2], results[1], streams, pictures, args.bound, args.ray_bound),
        "environment": describe(),
    })  # fmt: skip
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["capacity_plan"], indent=1))


if __name__ == "__main__":
    main()
