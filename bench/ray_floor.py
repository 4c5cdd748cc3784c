"""What Ray Serve's own request path costs on this machine, with nothing of edge-lstm in it: a
deployment answering "ok" (a plain `__call__`), and the same behind `@serve.ingress` (a Starlette
app, as `edge-lstm serve --ray` deploys), each timed with sequential keep-alive requests at about
35 requests/s on a local cluster on loopback, with the CPU Ray's processes spend per request.
bench/cluster.py's Ray rows are read against this floor.

    pip install -e '.[ray]'
    python bench/ray_floor.py   # -> bench/results/ray_floor.json (about 2 minutes)
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # the local cluster on loopback (read at import)

import ray
from ray import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent
PORT = 8555
REQUESTS, WARMUP, GAP_S = 400, 40, 0.02


async def hello(request: Request) -> PlainTextResponse:
    await request.body()
    return PlainTextResponse("ok")


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.5})
class Plain:
    async def __call__(self, request: Request) -> PlainTextResponse:
        return await hello(request)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(Starlette(routes=[Route("/", hello, methods=["GET", "POST"])]))
class Ingress:
    pass


def time_requests() -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", PORT)
    lat = []
    for _ in range(REQUESTS):
        t = time.perf_counter()
        conn.request("POST", "/", body=b"x" * 3136)  # an image's worth of bytes
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        lat.append((time.perf_counter() - t) * 1000)
        time.sleep(GAP_S)
    conn.close()
    kept = sorted(lat[WARMUP:])
    return {"n": len(kept), "p50_ms": round(statistics.median(kept), 3), "p90_ms": round(kept[int(0.9 * len(kept))], 3)}


def ray_cpu(seconds: float) -> dict[str, float]:
    """bench/cluster.py's reading of Ray's processes' CPU (cores by role over `seconds`)."""
    spec = importlib.util.spec_from_file_location("bench_cluster", ROOT / "bench" / "cluster.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.ray_cpu(seconds)  # type: ignore[no-any-return]


def timed_with_cpu() -> dict[str, Any]:
    """Latency of sequential requests, and the CPU Ray's processes spent per request meanwhile."""
    cpu: dict[str, float] = {}
    seconds = (REQUESTS - WARMUP) * GAP_S  # inside the timed stretch (each request adds its latency)
    t = threading.Thread(target=lambda: (time.sleep(WARMUP * GAP_S), cpu.update(ray_cpu(seconds))))
    t.start()
    out = time_requests()
    t.join()
    rate = 1 / (GAP_S + out["p50_ms"] / 1000)
    out["cpu_ms_per_request"] = {k: round(v / rate * 1000, 3) for k, v in cpu.items() if v}
    return out


def main() -> None:
    ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    out: dict[str, Any] = {"command": "python bench/ray_floor.py", "ray": ray.__version__}
    try:
        for name, deployment in (("plain __call__", Plain), ("@serve.ingress(Starlette)", Ingress)):
            serve.run(deployment.bind(), name="floor", route_prefix="/")
            time.sleep(2)
            out[name] = timed_with_cpu()
            print(name, out[name])
            serve.delete("floor")
    finally:
        serve.shutdown()
        ray.shutdown()
    out["environment"] = describe()
    (ROOT / "bench/results/ray_floor.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
