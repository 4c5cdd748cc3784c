"""Which HTTP server under the same app: uvicorn (what `edge-lstm serve` runs) against granian (a Rust
HTTP server for Python apps), in ONE run: the server's CPU per request over a fixed number of
one-image binary requests at fixed Poisson rates, and wrk at 16 connections.

    pip install granian
    python bench/http_server_trial.py [MODEL]   # -> bench/results/http_server_trial.json (~2 min)

Both run one process with the app of `edge-lstm serve MODEL` (serve.build_app), on loopback; granian
with its single-threaded runtime and uvloop, the settings that gave it its best trial here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = """from pathlib import Path
from edge_lstm.serve import ServeConfig, build_app
app = build_app(ServeConfig(models=(("", Path({model!r})),)))
"""


def load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def main() -> None:
    from edge_lstm import contract
    from edge_lstm.data import mnist
    from edge_lstm.environment import describe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=contract.DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "http_server_trial.json")
    args = parser.parse_args()
    granian = shutil.which("granian") or str(Path(sys.executable).parent / "granian")
    if not Path(granian).exists():
        sys.exit("error: granian not found (pip install granian)")
    serve, cluster = load("serve"), load("cluster")
    image = mnist.load_split(mnist.locate(None), "test").images[0]
    folder = Path(tempfile.mkdtemp(prefix="edge-lstm-trial-"))
    (folder / "trial_app.py").write_text(APP.format(model=str(args.model.resolve())))
    ports = {"uvicorn": serve.free_port(), "granian": serve.free_port()}
    commands = {
        "uvicorn": [
            sys.executable,
            "-m",
            "edge_lstm",
            "serve",
            str(args.model),
            "--workers",
            "1",
            "--port",
            str(ports["uvicorn"]),
        ],
        "granian": [
            granian,
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["granian"]),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--no-ws",
            "--runtime-mode",
            "st",
            "--working-dir",
            str(folder),
            "trial_app:app",
        ],
    }
    rows = []
    for name, cmd in commands.items():
        with ExitStack() as stack:
            health = f"http://127.0.0.1:{ports[name]}/v2/health/ready"
            pid = serve.start(cmd, health, stack)
            url = f"http://127.0.0.1:{ports[name]}/v2/models/edge_lstm"
            serve.run_http(serve.parse_url(url), image, 300.0, 2.0, 16, 1)  # warm-up, not kept
            print(name, file=sys.stderr, flush=True)
            rows.append(
                {
                    "server": name,
                    "command": " ".join(cmd[1:] if name == "uvicorn" else ["granian", *cmd[1:]]),
                    "cpu_per_request": [
                        serve.cpu_per_request(url, pid, image, rate, 4.0, cluster) for rate in (500.0, 1000.0)
                    ],
                    "wrk_16": cluster.wrk(url, image, 16, 6.0),
                }
            )
    shutil.rmtree(folder, ignore_errors=True)
    report = {"command": "python bench/http_server_trial.py", "rows": rows, "environment": describe()}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in rows:
        cpu = ", ".join(f"{c['rate']:.0f}/s: {c['cpu_us_per_request']:.0f} us" for c in r["cpu_per_request"])
        print(f"{r['server']:>8}: CPU per request {cpu}; wrk 16: {(r['wrk_16'] or {}).get('requests_per_s')} req/s")


if __name__ == "__main__":
    main()
