"""Which cell and how deep: LSTM vs GRU, one vs two layers, on MNIST, BasicMotions and JapaneseVowels,
in ONE run, through the commands a user runs.

    python bench/cells.py [--seeds 1,2,3]   # -> bench/results/cells.json (~25 min here)

For every data set, cell, depth and seed: `edge-lstm train` (MNIST: the default recipe; the sets: the
`--data` recipe with the test file), `export` of the fp32 file and, where the table allows it, the
int8 file (GRU's is refused: onnxruntime has no int8 GRU kernel), `eval` of each on the whole test set,
and `bench` of the fp32 file at batch 1 (one thread, median of the timed runs). Reported per
configuration: accuracy per seed and its mean, parameters, file sizes, batch-1 latency, train time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_lstm.arch import Arch  # noqa: E402
from edge_lstm.environment import describe  # noqa: E402
from edge_lstm.fileio import atomic_path  # noqa: E402
from edge_lstm.training.threads import native_bf16  # noqa: E402

SERIES = ROOT / "data" / "series"
SETS = {
    "MNIST": [],
    "BasicMotions": [
        "--data",
        str(SERIES / "BasicMotions_TRAIN.ts"),
        "--test-data",
        str(SERIES / "BasicMotions_TEST.ts"),
    ],
    "JapaneseVowels": [
        "--data",
        str(SERIES / "JapaneseVowels_TRAIN.ts"),
        "--test-data",
        str(SERIES / "JapaneseVowels_TEST.ts"),
    ],
}
CONFIGS = [("lstm", 1), ("gru", 1), ("lstm", 2), ("gru", 2)]


def cli(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "edge_lstm", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"edge-lstm {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done.stdout


def last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def one(data: str, cell: str, layers: int, seed: int, tmp: Path) -> dict[str, Any]:
    run = tmp / f"{data}-{cell}-{layers}-{seed}"
    extra = ["--cell", cell, "--layers", str(layers), "--seed", str(seed), "--out", str(run), "--json"]
    start = time.perf_counter()
    result = last_json(cli("train", *SETS[data], *extra))
    wall = time.perf_counter() - start
    test = [] if data == "MNIST" else ["--data", SETS[data][3]]
    cli("export", str(run / "model.onnx"), "--checkpoint", result["checkpoint"])
    fp32 = last_json(cli("eval", str(run / "model.onnx"), *test, "--json"))
    row: dict[str, Any] = {
        "seed": seed,
        "fp32": fp32["accuracy"],
        "train_seconds": result["train_seconds"],
        "train_wall_seconds": wall,
        "fp32_bytes": (run / "model.onnx").stat().st_size,
    }
    if cell == "lstm":
        cli("export", str(run / "model.onnx"), "--checkpoint", result["checkpoint"], "--int8")
        row["int8"] = last_json(cli("eval", str(run / "model.int8.onnx"), *test, "--json"))["accuracy"]
        row["int8_bytes"] = (run / "model.int8.onnx").stat().st_size
    if seed == SEEDS[0]:  # latency once per configuration: the weights do not change the work
        bench = last_json(
            cli("bench", str(run / "model.onnx"), "--batch", "1", "--threads", "1", "--min-time", "2", "--json")
        )
        row["batch1_p50_ms"] = next(r["p50_ms"] for r in bench["results"] if r["scenario"] == "single-stream")
        info = json.loads(cli("inspect", str(run / "model.onnx"), "--json").strip().splitlines()[-1])
        recorded = info["metadata"]["edge_lstm.arch"]  # inspect shows JSON metadata as JSON
        arch = Arch.from_dict(recorded) if isinstance(recorded, dict) else Arch.from_json(recorded)
        row["parameters"], row["arch"] = arch.parameters, arch.describe()
    return row


SEEDS = [1, 2, 3]


def main() -> None:
    global SEEDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cells.json")
    args = parser.parse_args()
    SEEDS = [int(s) for s in args.seeds.split(",")]
    report: dict[str, Any] = {
        "command": f"python bench/cells.py --seeds {args.seeds}",
        "precision_path": "bf16 (this CPU computes bf16)" if native_bf16() else "fp32",
        "sets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for data in SETS:
            report["sets"][data] = {}
            for cell, layers in CONFIGS:
                rows = [one(data, cell, layers, s, Path(tmp)) for s in SEEDS]
                first = rows[0]
                summary = {
                    "arch": first["arch"],
                    "parameters": first["parameters"],
                    "fp32_mean": statistics.mean(r["fp32"] for r in rows),
                    "fp32": [r["fp32"] for r in rows],
                    "int8": [r["int8"] for r in rows] if cell == "lstm" else "refused: no int8 GRU kernel",
                    "fp32_kib": first["fp32_bytes"] / 1024,
                    "int8_kib": first.get("int8_bytes", 0) / 1024 or None,
                    "batch1_p50_ms": first["batch1_p50_ms"],
                    "train_seconds_median": statistics.median(r["train_seconds"] for r in rows),
                    "runs": rows,
                }
                report["sets"][data][f"{cell}-{layers}"] = summary
                print(
                    f"{data:15s} {first['arch']:12s} {100 * summary['fp32_mean']:6.2f}%  "
                    f"{first['parameters']:>8,} params  {summary['fp32_kib']:7.1f} KiB  "
                    f"{summary['batch1_p50_ms'] * 1000:6.0f} us  train {summary['train_seconds_median']:.1f} s",
                    flush=True,
                )
    report["environment"] = describe()
    with atomic_path(args.out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
