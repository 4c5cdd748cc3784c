"""The default recipe on both precision paths, against the previous version, in ONE run.

    python bench/train_speed.py [--seeds 1,2,3] [--baseline COMMIT]   # -> bench/results/train_speed.json (~15 min here)

1. Accuracy on every seed: `edge-lstm train --seed S` with `--precision fp32` (what a CPU without
   native bf16 runs) and `--precision auto` (bf16 where the CPU has it; on other CPUs the same fp32
   path), seeds 1, 2, 3. The promise README makes is the minimum over these seeds, per path.
2. Wall time against the previous version: the same two commands from a checkout of `--baseline`
   (default 94e6b83, the version before fixed-shard training; a git worktree, its own bundled MNIST),
   seed 1, run between this version's runs. Wall time is process start to exit (what a user waits).
3. Beside other work: one epoch (`--epochs 1`) alone, then beside a busy loop (one competing
   CPU-bound process, `python3 -c "while True: pass"`), per path, both versions. Target: <= 2.5x.
4. `--preset seed` (the tutorial): its accuracy and time with this version.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_lstm.environment import describe

ROOT = Path(__file__).resolve().parent.parent
PATHS = {"fp32": ["--precision", "fp32"], "auto": ["--precision", "auto"]}


@contextlib.contextmanager
def checkout(commit: str) -> Iterator[Path]:
    """The baseline version's files in a temporary git worktree."""
    where = Path(tempfile.mkdtemp(prefix="edge-lstm-baseline-")) / "src"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), commit], cwd=ROOT, check=True, capture_output=True
    )
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT, capture_output=True)
        shutil.rmtree(where.parent, ignore_errors=True)


def train(args: list[str], out: Path, code: Path = ROOT, busy: bool = False) -> dict[str, Any]:
    """One `edge-lstm train` process from the code in `code`; wall time, accuracy, per-epoch rows."""
    cmd = [sys.executable, "-m", "edge_lstm", "train", "--out", str(out), "--json", *args]
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, cwd=code, env={**os.environ, "PYTHONPATH": str(code)}
        )
        wall = time.perf_counter() - t0
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    if proc.returncode != 0:
        sys.exit(f"training failed: {' '.join(cmd)} (in {code})\n{proc.stderr}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"test_accuracy"' in x]
    first = next((e for e in epochs if e["test_accuracy"] >= 0.99), None)
    policy = next((ln for ln in proc.stdout.splitlines() if ln.startswith("precision ")), None)
    return {
        "args": " ".join(args),
        "wall_seconds": round(wall, 2),
        "train_seconds": round(summary["train_seconds"], 2),
        "final_accuracy": summary["test_accuracy"],
        "policy_line": policy,
        "first_99": {"epoch": first["epoch"] + 1, "train_seconds": round(first["seconds"], 2)} if first else None,
        "per_epoch": [
            {k: e.get(k) for k in ("test_accuracy", "seconds", "precision", "shards", "threads")} for e in epochs
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--baseline", default="94e6b83", help="the previous version's commit")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_speed.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = Path(tempfile.mkdtemp(prefix="edge-lstm-train-speed-"))
    new: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
    base: dict[str, dict[str, Any]] = {}
    sharing: dict[str, dict[str, Any]] = {}
    with checkout(args.baseline) as old:
        for i, seed in enumerate(seeds):
            for path, extra in PATHS.items():
                if i == 0:  # the previous version's run right before this version's first one
                    print(f"baseline {path}", file=sys.stderr, flush=True)
                    base[path] = train(extra, runs / f"base-{path}", code=old)
                print(f"this version {path} seed {seed}", file=sys.stderr, flush=True)
                new[path].append({"seed": seed, **train([*extra, "--seed", str(seed)], runs / f"{path}-{seed}")})
        for version, code in (("previous", old), ("this", ROOT)):
            for path, extra in PATHS.items():
                print(f"sharing: {version} {path}", file=sys.stderr, flush=True)
                alone = train([*extra, "--epochs", "1"], runs / "alone", code=code)["train_seconds"]
                shared = train([*extra, "--epochs", "1"], runs / "shared", code=code, busy=True)["train_seconds"]
                sharing[f"{version} {path}"] = {
                    "alone_seconds": alone,
                    "shared_seconds": shared,
                    "ratio": round(shared / alone, 2),
                }
    seed_preset = train(["--preset", "seed"], runs / "seed")
    shutil.rmtree(runs, ignore_errors=True)

    summary = {}
    for path in PATHS:
        accs = [r["final_accuracy"] for r in new[path]]
        wall = statistics.median(r["wall_seconds"] for r in new[path])
        summary[path] = {
            "precision_used": new[path][0]["per_epoch"][0]["precision"],
            "accuracy_min": min(accs),
            "accuracy_mean": round(statistics.mean(accs), 5),
            "accuracies": accs,
            "every_seed_reaches_99_0": all(a >= 0.99 for a in accs),
            "wall_seconds_median": wall,
            "previous_wall_seconds": base[path]["wall_seconds"],
            "previous_accuracy_seed_1": base[path]["final_accuracy"],
            "wall_ratio_vs_previous": round(wall / base[path]["wall_seconds"], 3),
            "one_epoch_beside_a_busy_process": sharing[f"this {path}"]["ratio"],
            "previous_one_epoch_beside_a_busy_process": sharing[f"previous {path}"]["ratio"],
        }
    report = {
        "command": "python bench/train_speed.py" + (f" --seeds {args.seeds}" if args.seeds != "1,2,3" else ""),
        "baseline_commit": args.baseline,
        "summary": summary,
        "this_version": new,
        "previous_version": base,
        "sharing_one_epoch": sharing,
        "seed_preset": seed_preset,
        "environment": describe(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
