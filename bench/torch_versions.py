"""Export with several torch versions, each in its own venv, and show that every file has the same contract.

    python bench/torch_versions.py 2.9.1 2.11.0 2.13.0   # -> bench/results/torch_versions.json

For each version: a venv under runs/torch-venvs/ (reused), `pip install torch==V -e .[torch]`, a
small training run (3,000 images, 1 epoch: the weights do not matter, the graph does), then
`edge-lstm export --int8 --fp16` and `export --streaming`, each verified against PyTorch in
onnxruntime as always. Recorded per version: the operators, the declared inputs/outputs, and the
verification numbers. The script fails if any two versions' files differ in contract or operators.
Versions other than the CPU wheel on this disk are CUDA builds from PyPI (several GB each).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import json, sys, onnx, torch, onnxscript
from pathlib import Path
from edge_lstm import contract
from edge_lstm.export import ExportConfig, export
from edge_lstm.training import TrainConfig, train
out = Path(sys.argv[1])
run = train(TrainConfig(subset=3000, test_subset=500, epochs=1, batch_size=128), out / "run")
files = {}
arts = export(ExportConfig(output=out / "model.onnx", checkpoint=run.checkpoint, int8=True, fp16=True))
arts += export(ExportConfig(output=out / "step.onnx", checkpoint=run.checkpoint, streaming=True))
for a in arts:
    name = Path(a.path).name
    g = onnx.load(a.path).graph
    inputs, outputs = contract.declared_in_graph(g)
    files[name] = {
        "operators": [n.op_type for n in g.node],
        "inputs": [[d.name, d.dtype, list(d.dims or [])] for d in inputs],
        "outputs": [[d.name, d.dtype, list(d.dims or [])] for d in outputs],
        "value_info": len(g.value_info),
        "verified": a.verified, "max_abs_diff": a.max_abs_diff, "agreement": a.agreement,
    }
print(json.dumps({"torch": torch.__version__, "onnxscript": onnxscript.__version__,
                  "onnx": onnx.__version__, "files": files}))
"""


def venv_for(version: str, root: Path) -> Path:
    venv = root / f"torch-{version}"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    have = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if have.returncode != 0 or not have.stdout.startswith(version):
        pip = [str(python), "-m", "pip", "install", "-q", f"torch=={version}", "-e", f"{ROOT}[torch]"]
        subprocess.run(pip, check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", nargs="+")
    parser.add_argument("--venvs", type=Path, default=ROOT / "runs" / "torch-venvs")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "torch_versions.json")
    args = parser.parse_args()
    results = []
    for version in args.versions:
        python = venv_for(version, args.venvs)
        work = args.venvs / f"work-{version}"
        proc = subprocess.run([str(python), "-c", PROBE, str(work)], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            results.append({"torch": version, "error": proc.stderr.strip().splitlines()[-1]})
            print(f"torch {version}: FAILED: {results[-1]['error']}")
            continue
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"torch {results[-1]['torch']}: exported and verified {', '.join(results[-1]['files'])}")
    ok = [r for r in results if "files" in r]
    same = all(
        {k: (f["operators"], f["inputs"], f["outputs"]) for k, f in r["files"].items()}
        == {k: (f["operators"], f["inputs"], f["outputs"]) for k, f in ok[0]["files"].items()}
        for r in ok
    )
    report = {
        "command": "python bench/torch_versions.py " + " ".join(args.versions),
        "same_contract_and_operators": same and len(ok) == len(results),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print("same contract and operators on every version:", report["same_contract_and_operators"])
    if not report["same_contract_and_operators"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
