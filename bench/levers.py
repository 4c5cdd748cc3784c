"""Performance levers that were tried for issue 7, measured in ONE interleaved run.

    python bench/levers.py   # -> bench/results/levers.json

Against the reference (the fused export's single LSTM node, 1 intra-op thread for batch 1,
2 for batch 1024), each lever changes one thing:
  denormals-as-zero    session.set_denormal_as_zero = 1
  no spinning          intra-op threads do not spin (batch 1024, 2 threads)
  unrolled graph       the recurrence written out as MatMul + Sigmoid/Tanh per time step (~400 nodes)
  chunks of 64         the batch run as 64-image chunks on 1 thread (better cache locality)
  auto mode            1 intra-op thread, 64-image chunks spread over 2 workers (the runner's default)
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edge_lstm.bench import BenchSettings, Measured, TargetInfo, measure, result_row
from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.export import ExportConfig, export
from edge_lstm.export.mobile import unrolled as unrolled_graph
from edge_lstm.runtime import Classifier
from edge_lstm.training import load_model

ROOT = Path(__file__).resolve().parent.parent


class Fn:
    def __init__(self, info: TargetInfo, fn: Any) -> None:
        self.info, self.fn = info, fn

    def run(self) -> None:
        self.fn()


def session(path: Path, threads: int, **entries: str) -> Any:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    for k, v in entries.items():
        so.add_session_config_entry(k, v)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "runs" / "latest" / "model.pt")
    parser.add_argument("--min-time", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "levers.json")
    args = parser.parse_args()
    model, _ = load_model(args.checkpoint)
    images = mnist.load_split(mnist.BUNDLED_DIR, "test").images[:1024].astype(np.float32) / 255
    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp) / "fused.onnx"
        export(ExportConfig(output=fused, checkpoint=args.checkpoint, verify=False))
        # the recurrence written out per time step: the phone-NPU graph (export/mobile.py), one per batch size
        state = {k: v.numpy() for k, v in model.state_dict().items()}
        unrolled_files = {}
        for b in (1, 64, 1024):
            unrolled_files[b] = Path(tmp) / f"unrolled{b}.onnx"
            onnx.save(unrolled_graph(state, model.arch, b), str(unrolled_files[b]))
        with torch.inference_mode():
            want = model(torch.from_numpy(images[:64])).numpy()
        got = session(unrolled_files[64], 1).run(None, {"images": images[:64]})[0]
        unrolled_diff = float(np.abs(got - want).max())
        n_nodes = len(onnx.load(str(unrolled_files[64])).graph.node)

        configs = []

        def add(name: str, scenario: str, batch: int, threads: int, fn: Any) -> None:
            info = TargetInfo(model=name, provider="onnxruntime cpu", scenario=scenario, batch=batch, threads=threads)
            configs.append(Measured(Fn(info, fn)))

        for scenario, batch, threads in (("single-stream", 1, 1), ("offline", 1024, 1), ("offline", 1024, 2)):
            x = images[:batch]
            variants = {"reference (LSTM node)": session(fused, threads)}
            if batch == 1 or threads > 1:
                variants["denormals-as-zero"] = session(fused, threads, **{"session.set_denormal_as_zero": "1"})
                variants["unrolled graph"] = session(unrolled_files[batch], threads)
            if threads > 1:
                variants["no spinning"] = session(fused, threads, **{"session.intra_op.allow_spinning": "0"})
            for name, sess in variants.items():
                add(name, scenario, batch, threads, lambda s=sess, x=x: s.run(None, {"images": x}))
            if batch > 1:
                auto = Classifier(fused)  # 1 intra-op thread, 64-image chunks over `workers` threads
                auto.workers = threads
                add(
                    "chunks of 64" if threads == 1 else "auto mode",
                    scenario,
                    batch,
                    threads,
                    lambda x=x, a=auto: a.logits(x),
                )
        cfg = BenchSettings(warmup=10, warmup_s=0.2, min_count=100, min_seconds=args.min_time, rounds=8)
        measure(configs, cfg)
    rows = [result_row(m, keep_raw=False).to_dict() for m in configs]
    for r in rows:
        same = (r["scenario"], r["threads"])
        ref = next(q for q in rows if (q["scenario"], q["threads"]) == same and q["model"] == "reference (LSTM node)")
        r["p50_vs_reference"] = r["p50_ms"] / ref["p50_ms"]
        r["throughput_vs_reference"] = r["throughput"] / ref["throughput"]
    report = {
        "command": "python bench/levers.py",
        "environment": describe(),
        "unrolled": {"nodes": n_nodes, "max_abs_diff_vs_torch": unrolled_diff},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for r in rows:
        print(
            f"{r['scenario']:<14} t{r['threads']} {r['model']:<24} p50 {r['p50_ms'] * 1000:8.1f} us  "
            f"{r['throughput']:10,.0f} samples/s  x{r['throughput_vs_reference']:.2f} of reference"
        )


if __name__ == "__main__":
    main()
