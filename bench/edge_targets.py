"""Where each exported file runs, measured: every variant in onnxruntime and in engines that are not
onnxruntime, against the fp32 file on the whole test set, plus onnxruntime's mobile-usability report.

    python bench/edge_targets.py          # -> bench/results/edge_targets.json, mobile_usability_*.txt

Needs a checkpoint (`edge-lstm train`). Exports, into runs/edge-targets/: the fp32, int8, fp16 and
ORT files, the step model, a fixed-batch file (`--batch 1`, explicit zero LSTM state) and the
phone-NPU files (`--mobile`: unrolled fp32, static int8 QDQ). Engines:
  onnxruntime   every file (CPU provider)
  onnx-reference ONNX's own reference evaluator (onnx.reference): the standard-operator files
  openvino      when the `openvino` package is installed: every file it reads
  litert        the .tflite files (when the [tflite] extra is installed: export --tflite)
For each (file, engine): the test accuracy and the share of test images whose class equals the
fp32 file's in onnxruntime. onnxruntime's `check_onnx_model_mobile_usability` runs on the fp32 and
the phone-NPU files; its reports are committed beside the JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.batching import in_fixed_batches
from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.export import ExportConfig, export
from edge_lstm.fileio import sha256_file

ROOT = Path(__file__).resolve().parent.parent
Logits = Callable[[np.ndarray], np.ndarray]  # float32 (B, 28, 28) -> (B, 10)


def onnx_inputs(path: Path) -> tuple[list[str], int | None]:
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inits = {t.name for t in g.initializer}
    names = [i.name for i in g.input if i.name not in inits]
    d0 = g.input[0].type.tensor_type.shape.dim[0]
    return names, (d0.dim_value if d0.HasField("dim_value") else None)


def batched(run: Callable[[np.ndarray], np.ndarray], fixed: int | None, step: bool) -> Logits:
    """Feed a (B, 28, 28) batch to a runner taking either the whole batch, or `fixed` images at a time;
    a step model gets the rows one by one with its state."""

    def one(x: np.ndarray) -> np.ndarray:
        if not step:
            return run(x)
        h = np.zeros((1, len(x), contract.MNIST.hidden), np.float32)
        c = np.zeros_like(h)
        for t in range(x.shape[1]):
            logits, h, c = run((x[:, t], h, c))  # type: ignore[arg-type]
        return logits

    def logits(x: np.ndarray) -> np.ndarray:
        if fixed is None:
            return np.concatenate([one(x[i : i + 1000]) for i in range(0, len(x), 1000)])
        return in_fixed_batches(one, x, fixed)

    return logits


def engine_onnxruntime(path: Path) -> Logits:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    fixed = sess.get_inputs()[0].shape[0]
    step = names == list(contract.STEP.input_names)

    def run(x: Any) -> Any:
        return sess.run(None, dict(zip(names, x, strict=True))) if step else sess.run(None, {names[0]: x})[0]

    return batched(run, fixed if isinstance(fixed, int) else None, step)


def engine_reference(path: Path) -> Logits:
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(str(path))
    names, fixed = onnx_inputs(path)
    step = names == list(contract.STEP.input_names)

    def run(x: Any) -> Any:
        return ref.run(None, dict(zip(names, x, strict=True))) if step else ref.run(None, {names[0]: x})[0]

    return batched(run, fixed or None, step)


def engine_openvino(path: Path) -> Logits:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    names, fixed = onnx_inputs(path)
    step = names == list(contract.STEP.input_names)
    request = compiled.create_infer_request()

    def run(x: Any) -> Any:
        feeds = dict(zip(names, x, strict=True)) if step else {names[0]: x}
        out = request.infer(feeds)
        values = [out[o] for o in compiled.outputs]
        return values if step else values[0]

    return batched(run, fixed or None, step)


def engine_litert(path: Path) -> Logits:
    from edge_lstm.litert import litert_logits

    return litert_logits(path)


ENGINES: dict[str, Callable[[Path], Logits]] = {"onnxruntime": engine_onnxruntime, "onnx-reference": engine_reference}


def usability(path: Path, out: Path) -> dict[str, Any]:
    """onnxruntime's own mobile-usability check; the full report is written to `out`."""
    proc = subprocess.run(
        [sys.executable, "-m", "onnxruntime.tools.check_onnx_model_mobile_usability", str(path)],
        capture_output=True,
        text=True,
    )
    text = proc.stdout + proc.stderr
    out.write_text(re.sub(r"/\S*/(runs/edge-targets/)", r"\1", text))
    summary: dict[str, Any] = {}
    for ep in ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"):
        section = text.split(f"Checking {ep}", 1)[1].split("Checking ", 1)[0] if f"Checking {ep}" in text else ""
        handled = re.search(r"(\d+) partitions? with a total of (\d+)/(\d+) nodes", section)
        as_is = re.search(r"as is: (YES|NO)", section)
        summary[ep] = {
            "partitions": int(handled.group(1)) if handled else None,
            "nodes_supported": f"{handled.group(2)}/{handled.group(3)}" if handled else None,
            "should_perform_well_as_is": as_is.group(1) == "YES" if as_is else None,
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / contract.DEFAULT_CHECKPOINT)
    parser.add_argument(
        "--reference-limit", type=int, default=10000, help="test images through the reference evaluator"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "edge_targets.json")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint} not found: run `edge-lstm train` first")
    work = ROOT / "runs" / "edge-targets"
    work.mkdir(parents=True, exist_ok=True)
    ck = args.checkpoint
    arts = export(ExportConfig(output=work / "model.onnx", checkpoint=ck, int8=True, fp16=True, ort=True, mobile=True))
    arts += export(ExportConfig(output=work / "step.onnx", checkpoint=ck, streaming=True))
    arts += export(ExportConfig(output=work / "fixed1.onnx", checkpoint=ck, batch=1))
    has_tflite = importlib.util.find_spec("onnx2tf") is not None
    if has_tflite:  # the [tflite] extra: model.tflite and model.int8.tflite, verified in LiteRT by export
        arts += [
            a
            for a in export(ExportConfig(output=work / "model.onnx", checkpoint=ck, tflite=True))
            if "tflite" in a.variant
        ]
    files = {Path(a.path).name: Path(a.path) for a in arts}
    test = mnist.load_split(mnist.locate(), "test")
    x = test.images.astype(np.float32) / 255
    engines = dict(ENGINES)
    if importlib.util.find_spec("openvino") is not None:
        engines["openvino"] = engine_openvino
    reference_pred = engine_onnxruntime(files["model.onnx"])(x).argmax(1)
    results: list[dict[str, Any]] = []
    for name, path in files.items():
        file_engines = {"litert": engine_litert} if path.suffix == ".tflite" else engines
        for engine, make in file_engines.items():
            if engine != "onnxruntime" and path.suffix == ".ort":
                continue  # onnxruntime's own format
            n = args.reference_limit if engine == "onnx-reference" else len(x)
            row: dict[str, Any] = {"file": name, "engine": engine, "size_bytes": path.stat().st_size, "n": n}
            t0 = time.perf_counter()
            try:
                pred = make(path)(x[:n]).argmax(1)
            except Exception as e:  # an engine that cannot load or run the file: that is the finding
                row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:200]}"
            else:
                row["accuracy"] = float((pred == test.labels[:n]).mean())
                row["same_class_as_fp32"] = float((pred == reference_pred[:n]).mean())
            row["seconds"] = round(time.perf_counter() - t0, 2)
            results.append(row)
            print(json.dumps(row), flush=True)
    reports = {}
    for name in ("model.onnx", "model.mobile.onnx", "model.mobile.int8.onnx"):
        txt = args.out.parent / f"mobile_usability_{name.replace('.onnx', '').replace('.', '_')}.txt"
        reports[name] = {"report": txt.name, **usability(files[name], txt)}
    report = {
        "command": "python bench/edge_targets.py",
        "checkpoint_sha256": sha256_file(ck),
        "results": results,
        "mobile_usability": reports,
        "export": [a.to_dict() for a in arts],
        "environment": {**describe(), "openvino_used": "openvino" in engines},
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
