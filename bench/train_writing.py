"""Real writing against MNIST: this version's default recipe (with `--augment writing`) against the
previous version's, on both precision paths and three seeds, in ONE run.

    python bench/train_writing.py [--seeds 1,2,3] [--baseline COMMIT]
    # -> bench/results/train_writing.json (~15 min here)

For every seed and path (`--precision fp32`, what a CPU without native bf16 runs, and `--precision
auto`, bf16 where the CPU has it), `edge-lstm train --seed S` of the previous version (`--baseline`,
default 0279509, from a git worktree) and of this one, one after the other. Each run's MNIST test
accuracy and wall time (process start to exit), and its checkpoint's accuracy on the real-writing
set (bench/writing.py), overall, per family and per digit: this version's on the committed
data/writing/writing.npz, the previous version's on the same pictures normalised by its own
`predict` (its code, in a subprocess), as its users got them.
The targets: every family's error at most half the previous version's (seed by seed, path by path,
and on the means), MNIST >= 99.2% on every run, wall time within 1.5x.
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

import numpy as np

from edge_lstm.data.writing_set import WritingSet, load_writing_set, score
from edge_lstm.environment import describe
from edge_lstm.training.checkpoint import load_model
from edge_lstm.training.model import logits_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import PATHS, checkout, train
from writing import CANVASES, raw_pictures

ROOT = Path(__file__).resolve().parent.parent


# The previous version's own normalisation of the set's pictures (run with its code, in a subprocess).
NORMALISE = """
import sys, numpy as np
from edge_lstm.errors import InputError
from edge_lstm.runtime.preprocess import to_mnist
z = np.load(sys.argv[1])
images, refused = [], []
for k in range(len(z.files)):
    try:
        images.append(to_mnist(z[f"arr_{k}"])); refused.append(False)
    except InputError:
        images.append(np.zeros((28, 28), np.uint8)); refused.append(True)
np.savez(sys.argv[2], images=np.stack(images), refused=np.asarray(refused))
"""


def set_as_normalised_by(code: Path, tmp: Path) -> WritingSet:
    """The real-writing set as `code`'s `predict` sees it: the same pictures, its normalisation (so the
    previous version's row is what its users got, normalisation and model together)."""
    pictures, labels, family, _ = raw_pictures(None, CANVASES)
    np.savez(tmp / "raw.npz", *pictures)
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run(
        [sys.executable, "-c", NORMALISE, str(tmp / "raw.npz"), str(tmp / "norm.npz")], cwd=code, env=env, check=True
    )
    ws = load_writing_set()
    with np.load(tmp / "norm.npz") as z:
        return WritingSet(
            z["images"], np.asarray(labels, np.int64), np.asarray(family, np.int64), z["refused"], ws.families
        )


def writing_of(checkpoint: Path, ws: WritingSet) -> dict[str, Any]:
    model, _ = load_model(checkpoint)
    return score(ws, logits_of(model, ws.images).argmax(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--baseline", default="0279509")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train_writing.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with checkout(args.baseline) as old, tempfile.TemporaryDirectory() as tmp:
        sets = {"previous": set_as_normalised_by(old, Path(tmp)), "this": load_writing_set()}
        for path, flags in PATHS.items():
            for seed in seeds:
                for version, code in (("previous", old), ("this", ROOT)):
                    out = Path(tmp) / f"{version}-{path}-{seed}"
                    r = train([*flags, "--seed", str(seed)], out, code=code)
                    w = writing_of(out / "model.pt", sets[version])
                    row = {
                        "version": version,
                        "path": path,
                        "seed": seed,
                        "wall_s": r["wall_seconds"],
                        "test_accuracy": r["final_accuracy"],
                        "policy": r["policy_line"],
                        "real_writing": w,
                    }
                    runs.append(row)
                    fams = "  ".join(f"{k} {100 * v['accuracy']:.1f}%" for k, v in w["families"].items())
                    print(
                        f"{version:8s} {path:4s} seed {seed}: MNIST {100 * row['test_accuracy']:.2f}%  "
                        f"{row['wall_s']:.1f} s  writing {100 * w['accuracy']:.1f}%  {fams}",
                        flush=True,
                    )
    summary: dict[str, Any] = {}
    for path in PATHS:
        rows = {v: [r for r in runs if r["path"] == path and r["version"] == v] for v in ("previous", "this")}
        families = list(rows["this"][0]["real_writing"]["families"])
        per_family = {}
        for fam in families:
            err = {
                v: statistics.mean(1 - r["real_writing"]["families"][fam]["accuracy"] for r in rows[v]) for v in rows
            }
            per_family[fam] = {
                "previous_error": err["previous"],
                "this_error": err["this"],
                "error_ratio": err["this"] / err["previous"] if err["previous"] else None,
            }
        summary[path] = {
            "mnist_min_this": min(r["test_accuracy"] for r in rows["this"]),
            "mnist_min_previous": min(r["test_accuracy"] for r in rows["previous"]),
            "wall_median_this": statistics.median(r["wall_s"] for r in rows["this"]),
            "wall_median_previous": statistics.median(r["wall_s"] for r in rows["previous"]),
            "real_writing_mean_this": statistics.mean(r["real_writing"]["accuracy"] for r in rows["this"]),
            "real_writing_mean_previous": statistics.mean(r["real_writing"]["accuracy"] for r in rows["previous"]),
            "per_family": per_family,
            "every_family_error_halved_on_every_seed": all(
                1 - t["real_writing"]["families"][f]["accuracy"]
                <= 0.5 * (1 - p["real_writing"]["families"][f]["accuracy"])
                for t, p in zip(rows["this"], rows["previous"], strict=True)
                for f in families
            ),
        }
        s = summary[path]
        s["wall_ratio"] = s["wall_median_this"] / s["wall_median_previous"]
        print(
            f"{path}: MNIST min {100 * s['mnist_min_this']:.2f}% (previous {100 * s['mnist_min_previous']:.2f}%), "
            f"wall {s['wall_ratio']:.2f}x, writing {100 * s['real_writing_mean_this']:.1f}% "
            f"(previous {100 * s['real_writing_mean_previous']:.1f}%)",
            flush=True,
        )
    report = {
        "command": "python bench/train_writing.py " + " ".join(sys.argv[1:]),
        "baseline": args.baseline,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summary,
        "runs": runs,
        "environment": describe(),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
