"""Time `edge-lstm train` end to end (process start to exit) and record accuracy and environment.

    python bench/train.py                 # the default recipe -> bench/results/train_default.json
    python bench/train.py --preset seed   # the tutorial       -> bench/results/train_seed.json

The wall time includes starting Python, importing torch, reading and checksumming MNIST,
training, the per-epoch test evaluations and writing the run folder: what a user waits for.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=["default", "seed"])
    parser.add_argument(
        "--out", type=Path, default=None, help="result JSON (default bench/results/train_<preset>.json)"
    )
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / "results" / f"train_{args.preset}.json"
    # The parts of the wall time that are not training, measured apart in this process.
    t0 = time.perf_counter()
    from edge_lstm.data import mnist

    folder = mnist.locate()
    mnist.load_split(folder, "train"), mnist.load_split(folder, "test")
    data_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    import torch  # noqa: F401

    torch_import_seconds = time.perf_counter() - t0
    run_dir = ROOT / "runs" / f"bench-{args.preset}"
    cmd = [sys.executable, "-m", "edge_lstm", "train", "--preset", args.preset, "--out", str(run_dir), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"training failed:\n{proc.stderr}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch")]
    result = {
        "command": f"edge-lstm train --preset {args.preset}",
        "wall_seconds": round(wall, 1),
        "train_seconds": round(summary["train_seconds"], 1),
        "data_load_and_checksum_seconds": round(data_seconds, 2),
        "torch_import_seconds": round(torch_import_seconds, 2),
        "test_accuracy": summary["test_accuracy"],
        "epochs": summary["epochs"],
        "steps": summary["steps"],
        "per_epoch": epochs,
        "environment": describe(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_epoch", "environment")}))


if __name__ == "__main__":
    main()
