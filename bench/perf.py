"""Every way to run this LSTM on the CPU, measured in ONE interleaved run with edge-lstm's harness.

    python bench/perf.py                      # -> bench/results/perf.json, perf.png, table on stdout
    python bench/perf.py --min-time 1 --quick # a fast look (no torch.compile)

Configurations (single-stream: batch 1, 1 thread; offline: batch 1024, every core):
  PyTorch eager (inference mode), torch.compile, OpenVINO f32 and its default precision (when the
  `openvino` package is installed), onnxruntime with a plain export (no fusion) in a default
  session, fp32 and dynamic int8, and edge-lstm's own configurations (fused export, the runner's
  auto threading), fp32 and int8. Also the Python call floor (a bare session.run of an Identity
  model), the cold start of edge-lstm's default (read file, create session, first inference),
  and the test accuracy of every edge-lstm configuration next to the fp32 model's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.bench import BenchSettings, Measured, OrtTarget, TargetInfo, TorchTarget, measure, result_row
from edge_lstm.data import mnist
from edge_lstm.environment import describe, usable_cores
from edge_lstm.fileio import atomic_write_text
from edge_lstm.plots import latency_report
from edge_lstm.runtime import Classifier, SessionConfig

ROOT = Path(__file__).resolve().parent.parent


class FnTarget:
    """Any callable as a harness target; creation and first call timed like the others."""

    def __init__(self, info: TargetInfo, make: Any) -> None:
        t0 = time.perf_counter_ns()
        self.fn = make()
        created = time.perf_counter_ns()
        self.fn()
        first = time.perf_counter_ns()
        self.info = info.timed(t0, created, first)

    def run(self) -> None:
        self.fn()


def info(name: str, provider: str, scenario: str, batch: int, threads: int) -> TargetInfo:
    return TargetInfo(model=name, provider=provider, scenario=scenario, batch=batch, threads=threads)


def ort_default(path: Path, x: np.ndarray, threads: int) -> Any:
    """A default onnxruntime session, as a user would write it (only the thread count set)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"images": x})


def openvino_runner(path: Path, x: np.ndarray, threads: int, precision: str | None) -> Any:
    import openvino as ov

    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    return lambda: request.infer({0: x})


def torch_compiled(checkpoint: Path, x: np.ndarray, threads: int) -> Any:
    import torch

    from edge_lstm.training.checkpoint import load_model

    torch.set_num_threads(threads)
    model = torch.compile(load_model(checkpoint)[0])
    xt = torch.from_numpy(x)

    def run() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            model(xt)

    return run


def identity_floor() -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 28, 28])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so)
    x = np.zeros((1, 28, 28), np.float32)
    return lambda: sess.run(None, {"x": x})


def table_of(rows: list[dict[str, Any]], caption: str) -> Any:
    from rich.table import Table

    t = Table(title="bench/perf.py", caption=caption)
    for col in ("model", "runtime", "scenario", "batch", "thr", "p50", "samples/s", "vs torch"):
        t.add_column(col)
    for r in rows:
        ratio = r["throughput_vs_torch"] if r["scenario"] == "offline" else r["p50_vs_torch"]
        t.add_row(
            r["model"],
            r["provider"],
            r["scenario"],
            str(r["batch"]),
            str(r["threads"]),
            f"{r['p50_ms'] * 1000:.1f} us",
            f"{r['throughput']:,.0f}",
            f"{ratio:.2f}x",
        )
    return t


def export_variants(checkpoint: Path, folder: Path) -> dict[str, Path]:
    from edge_lstm.export import ExportConfig, export

    out = {}
    for name, fuse in (("edge", True), ("plain", False)):
        arts = export(ExportConfig(output=folder / f"{name}.onnx", checkpoint=checkpoint, fuse=fuse, int8=True))
        for a in arts:
            out[f"{name}_{a.variant}"] = Path(a.path)
    return out


def cold_start(path: Path, image: np.ndarray, repeats: int = 15) -> dict[str, float]:
    """Read the file, create the session, first inference: edge-lstm's default runner, in-process."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Classifier(path).logits(image)
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times)), "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "runs" / "latest" / "model.pt")
    parser.add_argument("--min-time", type=float, default=4.0, help="measured seconds per configuration")
    parser.add_argument(
        "--rounds", type=int, default=16, help="interleaved rounds (many short slices average out drift)"
    )
    parser.add_argument("--batch", type=int, default=1024, help="offline batch size")
    parser.add_argument("--quick", action="store_true", help="skip torch.compile (slow to compile)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "perf.json")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint} not found: run `edge-lstm train` first")
    cores = usable_cores()
    test = mnist.load_split(mnist.BUNDLED_DIR, "test")
    x8 = np.concatenate([test.images] * -(-args.batch // len(test)))[: args.batch]
    xf = x8.astype(np.float32) / 255
    have_openvino = importlib.util.find_spec("openvino") is not None
    cfg = BenchSettings(warmup=20, warmup_s=0.3, min_count=200, min_seconds=args.min_time, rounds=args.rounds)

    with tempfile.TemporaryDirectory() as tmp:
        files = export_variants(args.checkpoint, Path(tmp))
        configs: list[Measured] = []

        def add(t: Any) -> None:
            configs.append(Measured(t))

        for scenario, batch, threads in (("single-stream", 1, 1), ("offline", args.batch, cores)):
            x = xf[:batch]
            add(TorchTarget(args.checkpoint, scenario, batch, threads, x8))
            if not args.quick:
                add(
                    FnTarget(
                        info("torch.compile", "torch.compile", scenario, batch, threads),
                        lambda x=x, t=threads: torch_compiled(args.checkpoint, x, t),
                    )
                )
            if have_openvino:
                for prec, name in (("f32", "openvino f32"), (None, "openvino default")):
                    add(
                        FnTarget(
                            info(str(files["plain_fp32"]), name, scenario, batch, threads),
                            lambda x=x, t=threads, p=prec: openvino_runner(files["plain_fp32"], x, t, p),
                        )
                    )
            for variant in ("plain_fp32", "plain_int8"):
                name = "onnxruntime default session"
                add(
                    FnTarget(
                        info(str(files[variant]), name, scenario, batch, threads),
                        lambda x=x, t=threads, v=variant: ort_default(files[v], x, t),
                    )
                )
            for variant in ("edge_fp32", "edge_int8"):
                add(OrtTarget(files[variant], "cpu", scenario, batch, None, SessionConfig(), x8))  # auto threading
            if scenario == "offline":
                add(
                    OrtTarget(files["edge_fp32"], "cpu", scenario, batch, cores, SessionConfig(), x8)
                )  # intra-op threads instead
            else:
                add(
                    FnTarget(
                        info("identity.onnx", "onnxruntime (Identity model)", scenario, 1, 1),
                        identity_floor,
                    )
                )

        measure(configs, cfg, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
        rows = [result_row(m, keep_raw=True).to_dict() for m in configs]
        for r in rows:
            r["concurrency"], r["interval_ms"] = 1, 0.0
            r["model"] = Path(r["model"]).name
            if r["provider"] == "cpu":
                r["provider"] = "edge-lstm (onnxruntime cpu)"
        base = {r["scenario"]: r for r in rows if r["provider"] == "torch"}
        for r in rows:
            b = base[r["scenario"]]
            r["p50_vs_torch"] = r["p50_ms"] / b["p50_ms"]
            r["throughput_vs_torch"] = r["throughput"] / b["throughput"]

        accuracy = {}
        for variant in ("edge_fp32", "edge_int8", "plain_fp32"):
            accuracy[variant] = float((Classifier(files[variant]).predict_labels(test.images) == test.labels).mean())
        cold = cold_start(files["edge_fp32"], x8[:1])

    def best(scenario: str, key: str, prefix: str) -> dict[str, Any]:
        cands = [r for r in rows if r["scenario"] == scenario and r["provider"].startswith(prefix)]
        return min(cands, key=lambda r: r["p50_ms"]) if key == "p50" else max(cands, key=lambda r: r["throughput"])

    ss_best = best("single-stream", "p50", "edge-lstm")
    ss_fp32 = next(r for r in rows if r["scenario"] == "single-stream" and r["model"] == files["edge_fp32"].name)
    off_best = best("offline", "throughput", "edge-lstm")
    ov_off = [r for r in rows if r["scenario"] == "offline" and r["provider"].startswith("openvino")]
    targets = {
        "single_stream_best_p50_vs_torch": {
            "value": ss_best["p50_vs_torch"],
            "target": "<= 0.15",
            "config": f"{ss_best['model']} {ss_best['threading']}",
        },
        "single_stream_fp32_p50_vs_torch": {"value": ss_fp32["p50_vs_torch"], "target": "<= 0.35"},
        "offline_best_throughput_vs_torch": {
            "value": off_best["throughput_vs_torch"],
            "target": ">= 2.0",
            "config": f"{off_best['model']} {off_best['threading']}",
        },
        "offline_best_vs_openvino_best": {
            "value": off_best["throughput"] / max(r["throughput"] for r in ov_off) if ov_off else None,
            "target": "> 1.0",
        },
        "cold_start_ms": {"value": cold["median_ms"], "target": "<= 10"},
        "accuracy_points_below_fp32": {
            "value": {k: 100 * (accuracy["edge_fp32"] - v) for k, v in accuracy.items()},
            "target": "<= 0.3",
        },
    }
    raw = {f"{r['model']} {r['provider']} {r['scenario']} b{r['batch']} t{r['threads']}": r.pop("raw_ms") for r in rows}
    report = {
        "command": "python bench/perf.py" + (" --quick" if args.quick else ""),
        "method": {
            "harness": "edge_lstm.bench.measure (interleaved rounds)",
            "min_seconds": args.min_time,
            "rounds": args.rounds,
            "percentiles": "nearest-rank",
        },
        "environment": describe(),
        "results": rows,
        "accuracy": accuracy,
        "cold_start": cold,
        "targets": targets,
    }
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    latency_report(rows, raw, args.out.with_suffix(".png"))
    from rich.console import Console

    Console(width=220).print(table_of(rows, report["method"]["percentiles"]))
    print(json.dumps(targets, indent=1))


if __name__ == "__main__":
    main()
