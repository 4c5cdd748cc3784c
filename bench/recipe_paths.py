"""The default recipe on both CPU precision paths, seed by seed, against the same recipe without the
pictures training adds (typeset and boxy digits, non-digits: data/glyphs.py), in ONE run:

    python bench/recipe_paths.py [--seeds 1,2,3]   # -> bench/results/recipe_paths.json (~15 min here)

Paths: `bf16` (`--precision auto` on a CPU with native bf16) and `fp32` as a CPU without AVX-512
computes it: the run's process has ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2, so PyTorch's
kernels are the ones an AVX2-only CPU (an AMD Zen 3, say) runs. On an AVX2-only machine that is its own
fp32 path; on one with AVX-512 it is the closest this machine comes to another CPU's numbers (it
reproduced, to the digit, a Zen 3 user's answer for data/samples/drawn_3.png).

For each run: MNIST's test accuracy, training time, the real-writing set per family (bench/writing.py),
"no digit" as the file decides it (non-digits refused, digits wrongly refused), and `predict`'s answer
and margin for every README sample (data/samples).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
RECIPES = {"default": {}, "without added pictures": {"typeset": 0, "outliers": 0}}
TRAIN = """
import json, sys
from pathlib import Path
from edge_lstm.training import train
from edge_lstm.training.recipes import override, preset_config
cfg = override(preset_config("default"), **json.loads(sys.argv[2]))
r = train(cfg, Path(sys.argv[1]))
print(json.dumps({"test_accuracy": r.test_accuracy, "train_seconds": r.train_seconds}))
"""


def cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "edge_lstm", *args], capture_output=True, text=True, cwd=ROOT)
    return out.stdout


def one(recipe: str, path: str, seed: int, tmp: Path) -> dict[str, Any]:
    run = tmp / f"{recipe.replace(' ', '_')}-{path}-{seed}"
    options = {**RECIPES[recipe], "seed": seed, "precision": "fp32" if path == "fp32" else "auto"}
    env = {**os.environ, **(AVX2 if path == "fp32" else {})}
    t0 = time.perf_counter()
    command = [sys.executable, "-c", TRAIN, str(run), json.dumps(options)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    row: dict[str, Any] = {"recipe": recipe, "path": path, "seed": seed, **json.loads(done.stdout.splitlines()[-1])}
    row["wall_seconds"] = round(time.perf_counter() - t0, 1)
    model = run / "model.onnx"
    cli("export", str(model), "--checkpoint", str(run / "model.pt"))
    scored = tmp / "w.json"
    subprocess.run([sys.executable, "bench/writing.py", str(model), "--out", str(scored)], cwd=ROOT, check=True)
    result = json.loads(scored.read_text())["models"][str(model)]
    row["real_writing"] = result["accuracy"]
    row["families"] = {f: r["accuracy"] for f, r in result["families"].items()}
    row["no_digit"] = {k: v for k, v in result["no_digit"].items() if k != "per_family"}
    row["no_digit_per_family"] = result["no_digit"]["per_family"]
    samples = sorted(str(p) for p in (ROOT / "data" / "samples").iterdir())
    preds = json.loads(cli("predict", str(model), *samples, "--json", "--top-k", "2").splitlines()[-1])["predictions"]
    row["samples"] = {
        Path(p["source"]).name: {"label": p["label"], "margin": p["margin"], "error": p["error"]} for p in preds
    }
    said = row["samples"].values()
    right = [Path(s).stem.split("_")[-1] == str(v["label"]) for s, v in zip(samples, said, strict=True)]
    margins = [v["margin"] or 0.0 for v in row["samples"].values()]
    row["samples_right"], row["smallest_margin"] = sum(right), min(margins)
    keys = ("recipe", "path", "seed", "test_accuracy", "samples_right", "smallest_margin")
    print(json.dumps({k: row[k] for k in keys}), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "recipe_paths.json")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    sys.path.insert(0, str(ROOT))
    from edge_lstm.environment import describe

    rows = []
    with tempfile.TemporaryDirectory(prefix="edge-lstm-paths-") as tmp:
        for seed in seeds:
            for path in ("bf16", "fp32"):
                for recipe in RECIPES:
                    rows.append(one(recipe, path, seed, Path(tmp)))
    command = "python bench/recipe_paths.py " + " ".join(sys.argv[1:])
    report = {"command": command, "runs": rows, "environment": describe()}
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
