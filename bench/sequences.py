"""Own sequence data end to end, against what a time-series practitioner would use instead, in ONE run.

    python bench/sequences.py [--seeds 1,2,3]   # -> bench/results/sequences.json (~8 min here; needs aeon)
    python bench/sequences.py --noise-sweep     # -> bench/results/sequences_noise.json (~5 min)

For BasicMotions (6 smartwatch channels, 100 steps, 4 activities) and JapaneseVowels (12 LPC
coefficients, 7-29 steps, 9 speakers), both in data/series/ (UEA/UCR .ts files, from aeon's wheel):
for every seed, `edge-lstm train --data TRAIN --test-data TEST` (the default recipe, and for
JapaneseVowels also `--noise 1.0`), `export --int8 --streaming`, `eval` of the fp32 and int8 files,
the streaming curve (how early the answer so far is right) and `bench` of the fp32 file at batch 1.
Beside it, in the same run: aeon's MiniRocket (on the archive's padded `_eq` files where lengths
differ: it needs equal lengths) with the same seeds, and a 1-nearest-neighbour baseline (Euclidean,
each series padded with its last value to the longest length). Then one seed of the default recipe
on four more of aeon's bundled sets (two short, two long univariate ones) beside 1-NN. aeon is a
benchmark dependency only (`pip install aeon`); the toolkit reads .ts files itself.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_lstm.data import sequences  # noqa: E402
from edge_lstm.environment import describe  # noqa: E402
from edge_lstm.fileio import atomic_path  # noqa: E402

SETS = {"BasicMotions": "BasicMotions", "JapaneseVowels": "JapaneseVowels_eq"}
RECIPES = {"BasicMotions": {"default": []}, "JapaneseVowels": {"default": [], "noise 1.0": ["--noise", "1.0"]}}


class Failed(Exception):
    pass


def cli(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-m", "edge_lstm", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise Failed(f"edge-lstm {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout


def last_json(out: str) -> Any:
    return json.loads(out.strip().splitlines()[-1])


def lstm_run(name: str, seed: int, extra: list[str], tmp: Path) -> dict[str, Any]:
    train, test = ROOT / f"data/series/{name}_TRAIN.ts", ROOT / f"data/series/{name}_TEST.ts"
    run = tmp / f"{name}-{seed}-{len(extra)}"
    start = time.perf_counter()
    result = last_json(
        cli(
            "train",
            "--data",
            str(train),
            "--test-data",
            str(test),
            "--seed",
            str(seed),
            "--out",
            str(run),
            "--json",
            *extra,
        )
    )
    wall = time.perf_counter() - start
    ckpt = result["checkpoint"]
    cli("export", str(run / "model.onnx"), "--checkpoint", ckpt)
    cli("export", str(run / "step.onnx"), "--checkpoint", ckpt, "--streaming")
    fp32 = last_json(cli("eval", str(run / "model.onnx"), "--data", str(test), "--json"))
    try:  # export refuses an int8 file beyond its tolerance: that is a result too
        cli("export", str(run / "model.onnx"), "--checkpoint", ckpt, "--int8")
        int8 = last_json(cli("eval", str(run / "model.int8.onnx"), "--data", str(test), "--json"))
    except Failed as e:
        int8 = {"accuracy": None, "refused": str(e)}
    curve = last_json(cli("eval", str(run / "step.onnx"), "--streaming", "--data", str(test), "--json"))
    return {
        "seed": seed,
        "train_accuracy_report": result["test_accuracy"],
        "train_seconds": result["train_seconds"],
        "train_wall_seconds": wall,
        "fp32": fp32["accuracy"],
        "int8": int8["accuracy"],
        "int8_refused": int8.get("refused"),
        "int8_minus_fp32_points": None if int8["accuracy"] is None else 100 * (int8["accuracy"] - fp32["accuracy"]),
        "accuracy_after_steps": curve["accuracy_after_rows"],
        "steps_for_99pct_of_final": curve["rows_for_99pct_of_final"],
        "model_dir": str(run),
    }


def bench_latency(model: Path) -> float:
    out = last_json(cli("bench", str(model), "--batch", "1", "--min-time", "1", "--rounds", "1", "--json"))
    return float(out["results"][0]["p50_ms"])


def minirocket(name: str, seed: int) -> float:
    import aeon
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.datasets import load_from_ts_file

    folder = Path(aeon.__file__).parent / "datasets" / "data" / name
    eq = SETS[name]
    x_tr, y_tr = load_from_ts_file(str(folder / f"{eq}_TRAIN.ts"))
    x_te, y_te = load_from_ts_file(str(folder / f"{eq}_TEST.ts"))
    clf = MiniRocketClassifier(random_state=seed, n_jobs=1)
    clf.fit(x_tr, y_tr)
    return float((clf.predict(x_te) == y_te).mean())


def nearest_neighbour(name: str) -> float:
    train = sequences.load(ROOT / f"data/series/{name}_TRAIN.ts")
    return nearest_neighbour_of(train, sequences.load(ROOT / f"data/series/{name}_TEST.ts", train.classes))


def padded_by_last(train: sequences.SequenceSet, test: sequences.SequenceSet) -> tuple[np.ndarray, np.ndarray]:
    """Both sets as (N, length, F) float64, each series padded with its last value to the longest length
    of either: what the baselines (1-NN here, MiniRocket in sequence_suite.py) read."""
    length = max(train.x.shape[1], test.x.shape[1])

    def padded(s: sequences.SequenceSet) -> np.ndarray:
        out = np.empty((len(s), length, s.features), np.float64)
        for i, n in enumerate(s.lengths):
            out[i, :n], out[i, n:] = s.x[i, :n], s.x[i, n - 1]
        return out

    return padded(train), padded(test)


def nearest_neighbour_of(train: sequences.SequenceSet, test: sequences.SequenceSet) -> float:
    a, b = (p.reshape(len(p), -1) for p in padded_by_last(train, test))
    d = ((b[:, None, :] - a[None, :, :]) ** 2).sum(-1)
    return float((train.labels[d.argmin(1)] == test.labels).mean())


OTHERS = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "PickupGestureWiimoteZ")  # more of aeon's bundled sets


def other_set(name: str, tmp: Path) -> dict[str, Any]:
    """One seed of the default recipe on another bundled set, beside 1-NN (read from aeon's wheel)."""
    import aeon

    folder = Path(aeon.__file__).parent / "datasets" / "data" / name
    train, test = folder / f"{name}_TRAIN.ts", folder / f"{name}_TEST.ts"
    start = time.perf_counter()
    result = last_json(cli("train", "--data", str(train), "--test-data", str(test), "--out", str(tmp / name), "--json"))
    wall = time.perf_counter() - start
    cli("export", str(tmp / f"{name}.onnx"), "--checkpoint", result["checkpoint"])
    ev = last_json(cli("eval", str(tmp / f"{name}.onnx"), "--data", str(test), "--json"))
    tr = sequences.load(train)
    te = sequences.load(test, tr.classes)
    return {
        "lstm": ev["accuracy"],
        "one_nn": nearest_neighbour_of(tr, te),
        "train_wall_seconds": wall,
        "shape": [len(tr), int(tr.lengths.min()), int(tr.lengths.max()), tr.features],
        "n_test": len(te),
    }


NOISES = (0.1, 0.3, 0.5, 1.0)


def noise_sweep(seeds: list[int], out: Path) -> None:
    """`--noise-sweep`: `train --data --noise X --seed S` on both sets; the test accuracy of each."""
    report: dict[str, Any] = {"command": "python bench/sequences.py --noise-sweep", "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            train, test = ROOT / f"data/series/{name}_TRAIN.ts", ROOT / f"data/series/{name}_TEST.ts"
            report["sets"][name] = {
                str(noise): [
                    last_json(
                        cli(
                            "train",
                            "--data",
                            str(train),
                            "--test-data",
                            str(test),
                            "--noise",
                            str(noise),
                            "--seed",
                            str(seed),
                            "--out",
                            str(Path(tmp) / "run"),
                            "--json",
                        )
                    )["test_accuracy"]
                    for seed in seeds
                ]
                for noise in NOISES
            }
            print(name, report["sets"][name], flush=True)
    report["environment"] = describe()
    with atomic_path(out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument(
        "--noise-sweep", action="store_true", help="only the noise sweep (results/sequences_noise.json)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.noise_sweep:
        return noise_sweep(seeds, args.out or ROOT / "bench/results/sequences_noise.json")
    args.out = args.out or ROOT / "bench/results/sequences.json"
    report: dict[str, Any] = {"command": "python bench/sequences.py --seeds " + args.seeds, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETS:
            entry: dict[str, Any] = {"recipes": {}}
            for recipe, extra in RECIPES[name].items():
                runs = [lstm_run(name, seed, extra, Path(tmp)) for seed in seeds]
                entry["recipes"][recipe] = {
                    "runs": runs,
                    "fp32": [r["fp32"] for r in runs],
                    "int8": [r["int8"] for r in runs],
                }
                print(name, recipe, [(r["fp32"], r["int8"]) for r in runs], flush=True)
            first = entry["recipes"]["default"]["runs"][0]
            entry["fp32_p50_ms_batch1"] = bench_latency(Path(first["model_dir"]) / "model.onnx")
            entry["minirocket"] = [minirocket(name, seed) for seed in seeds]
            entry["minirocket_mean"] = statistics.mean(entry["minirocket"])
            entry["one_nn"] = nearest_neighbour(name)
            for r in entry["recipes"].values():
                r["every_seed_at_least_minirocket_mean"] = all(a >= entry["minirocket_mean"] - 1e-9 for a in r["fp32"])
                r["int8_within_half_a_point"] = all(
                    x["int8_minus_fp32_points"] is not None and abs(x["int8_minus_fp32_points"]) <= 0.5 + 1e-9
                    for x in r["runs"]
                )
            print(name, "MiniRocket", entry["minirocket"], "1-NN", entry["one_nn"], flush=True)
            report["sets"][name] = entry
        report["others"] = {}
        for name in OTHERS:
            report["others"][name] = other_set(name, Path(tmp))
            print(name, report["others"][name], flush=True)
    report["environment"] = describe()
    with atomic_path(args.out) as tmp_out:
        tmp_out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
