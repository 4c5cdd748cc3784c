"""Issue 14's two targets in ONE run: today's recipe against the new default, and epochs under sharing.

    python bench/train_speed.py            # -> bench/results/train_speed.json (about 4 minutes here)

1. Speed to accuracy: `edge-lstm train` with the previous default (fp32, 12 epochs, one-cycle peak
   3e-3, all cores) and with the new default (precision auto, 8 epochs, peak 5e-3, load-following
   threads), alternated `--repeats` times so that machine drift hits both. Wall time is process start
   to exit (what a user waits for). Reported: wall and training seconds, the epoch and time at which
   each first reached 99.0% test accuracy, the final accuracy. Target: the new default reaches
   >= 99.0% (final >= 99.1%) in at most half the previous default's wall time.
2. Sharing: one epoch alone, then one epoch beside a busy loop (one competing CPU-bound process),
   for both thread policies. Target: <= 2.5x the time alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edge_lstm.environment import describe, usable_cores

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS = ["--precision", "fp32", "--threads", "{cores}", "--epochs", "12", "--lr", "3e-3"]


def train(args: list[str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "edge_lstm", "train", "--out", str(out), "--json", *args]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"training failed: {' '.join(cmd)}\n{proc.stderr}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"test_accuracy"' in x]
    first = next((e for e in epochs if e["test_accuracy"] >= 0.99), None)
    return {
        "wall_seconds": round(wall, 2),
        "train_seconds": round(summary["train_seconds"], 2),
        "final_accuracy": summary["test_accuracy"],
        "first_99": {"epoch": first["epoch"] + 1, "train_seconds": round(first["seconds"], 2)} if first else None,
        "per_epoch": [
            {
                "accuracy": e["test_accuracy"],
                "seconds": round(e["seconds"], 2),
                "threads": e.get("threads"),
                "precision": e.get("precision"),
            }
            for e in epochs
        ],
    }


def one_epoch(args: list[str], out: Path, busy: bool) -> float:
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        return train([*args, "--epochs", "1"], out)["train_seconds"]
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="alternated runs of each recipe")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_speed.json")
    args = parser.parse_args()
    cores = usable_cores()
    previous = [a.format(cores=cores) for a in PREVIOUS]
    runs = ROOT / "runs" / "train-speed"
    recipes = {"previous default": previous, "new default": []}
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in recipes}
    for r in range(args.repeats):
        for name, extra in recipes.items():
            print(f"repeat {r + 1}: {name}", file=sys.stderr, flush=True)
            results[name].append(train(extra, runs / f"{name.split()[0]}-{r}"))
    policies = {"all cores, fixed (previous)": ["--precision", "fp32", "--threads", str(cores)], "new default": []}
    sharing = {}
    for name, extra in policies.items():
        print(f"sharing: {name}", file=sys.stderr, flush=True)
        alone = one_epoch(extra, runs / "alone", busy=False)
        shared = one_epoch(extra, runs / "shared", busy=True)
        sharing[name] = {"alone_seconds": alone, "shared_seconds": shared, "ratio": round(shared / alone, 2)}

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    new, old = "new default", "previous default"
    wall_ratio = med(new, "wall_seconds") / med(old, "wall_seconds")
    report = {
        "command": "python bench/train_speed.py" + (f" --repeats {args.repeats}" if args.repeats != 2 else ""),
        "recipes": {"previous default": " ".join(previous), "new default": "(no options)"},
        "results": results,
        "sharing_one_epoch": sharing,
        "targets": {
            "wall_ratio_new_vs_previous": {"value": round(wall_ratio, 3), "target": "<= 0.5", "met": wall_ratio <= 0.5},
            "new_reaches_99_0": {
                "value": [x["first_99"] for x in results[new]],
                "met": all(x["first_99"] for x in results[new]),
            },
            "new_final_accuracy": {
                "value": [x["final_accuracy"] for x in results[new]],
                "target": ">= 0.991",
                "met": all(x["final_accuracy"] >= 0.991 for x in results[new]),
            },
            "shared_epoch_ratio_new": {
                "value": sharing[new]["ratio"],
                "target": "<= 2.5",
                "met": sharing[new]["ratio"] <= 2.5,
            },
        },
        "environment": describe(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["targets"], indent=1))


if __name__ == "__main__":
    main()
