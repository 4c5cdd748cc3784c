"""OpenVINO as an onnxruntime execution provider (the `onnxruntime-ep-openvino` plugin), measured
option set by option set on the whole test set.

    python bench/openvino_check.py export/model.onnx --out bench/results/openvino_check.json

For each option set given to the plugin's CPU device (the plugin's own keys, straight to onnxruntime,
without edge-lstm's defaults, so that what the EP itself accepts is what is seen): whether the session
is created and runs on OpenVINO, the test accuracy, the share of images whose class equals the CPU
provider's, the largest logit difference to it (a reduced inference precision shows here), batch-1
p50 latency and batch-1024 throughput, each beside the CPU provider's in the same run. It needs an
Intel CPU: on other vendors the plugin offers no CPU device (README), and the script says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime import plugins

F32 = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "f32"}})
BF16 = json.dumps({"CPU": {"INFERENCE_PRECISION_HINT": "bf16"}})
# The documented keys: `precision` (deprecated since OpenVINO 2025.3 / ORT 1.23) and `load_config`
# (OpenVINO properties as JSON, the recommended way), alone and together.
OPTION_SETS: dict[str, dict[str, str]] = {
    "none": {},
    "precision=FP32": {"precision": "FP32"},
    "precision=ACCURACY": {"precision": "ACCURACY"},
    "load_config f32": {"load_config": F32},
    "load_config bf16": {"load_config": BF16},
    "precision=FP32 + load_config bf16": {"precision": "FP32", "load_config": BF16},
}


def p50_us(run: Any, x: np.ndarray, calls: int) -> float:
    for _ in range(20):
        run(x)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def throughput(run: Any, x: np.ndarray, repeats: int) -> float:
    run(x)
    best = min(_timed(run, x) for _ in range(repeats))
    return len(x) / best


def _timed(run: Any, x: np.ndarray) -> float:
    t = time.perf_counter()
    run(x)
    return time.perf_counter() - t


def measure(
    session: Any, images: np.ndarray, labels: np.ndarray, ref: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    def run(x: np.ndarray) -> np.ndarray:
        return session.run(["logits"], {"images": x})[0]

    logits = np.concatenate([run(images[i : i + 1000]) for i in range(0, len(images), 1000)])
    row: dict[str, Any] = {
        "ran_on": session.get_providers(),
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "batch1_p50_us": round(p50_us(run, images[:1], 500), 1),
        "batch1024_samples_per_s": round(throughput(run, images[:1024], 10)),
    }
    if ref is not None:
        row["same_class_as_cpu"] = float((logits.argmax(1) == ref.argmax(1)).mean())
        row["max_logit_diff_vs_cpu"] = float(np.abs(logits - ref).max())
    return row, logits


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/results/openvino_check.json"))
    args = ap.parse_args()

    if not args.model.is_file():
        sys.exit(f"{args.model}: not found (edge-lstm export writes export/model.onnx)")
    import onnxruntime as ort

    split = mnist.load_split(mnist.locate(), "test")
    images, labels = split.images.astype(np.float32) / 255, split.labels
    data = args.model.read_bytes()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    cpu_row, ref = measure(ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]), images, labels, None)
    report: dict[str, Any] = {"model": str(args.model), "environment": describe(), "cpu_provider": cpu_row}
    print("cpu provider:", cpu_row, flush=True)
    try:
        devices = plugins.devices_for("openvino", "OpenVINOExecutionProvider", {"device_type": "CPU"})
    except EdgeLstmError as e:
        report["error"] = str(e)
        devices = None
    if devices is None:
        report.setdefault("error", "the onnxruntime-ep-openvino plugin is not installed")
        print("openvino:", report["error"], file=sys.stderr)
    else:
        report["device_metadata"] = {k: str(v) for k, v in devices[0].ep_metadata.items()}
        report["option_sets"] = {}
        for name, options in OPTION_SETS.items():
            so = ort.SessionOptions()
            so.log_severity_level = 3
            try:
                so.add_provider_for_devices(devices, options)
                row, _ = measure(ort.InferenceSession(data, so), images, labels, ref)
            except Exception as e:  # the EP's own errors (pybind types): recorded, the next set is tried
                row = {"error": str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__}
            report["option_sets"][name] = {"options": options, **row}
            print(f"{name}: {row}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0 if devices else 1


if __name__ == "__main__":
    sys.exit(main())
