"""Qualcomm's QNN execution provider (the `onnxruntime-qnn` plugin, `pip install -e '.[qnn]'`) on the
exported files, through edge-lstm's own runner, on the whole test set.

    python bench/qnn_check.py            # -> bench/results/qnn_check.json

Exports (into runs/qnn-check/) the fp32 file, a fixed-batch one (`--batch 1`), the step model and the
phone-NPU files (`--mobile`), then for each: whether a `--provider qnn` session is made, where
onnxruntime placed the nodes, the test accuracy and the share of images whose class equals the fp32
file's on the CPU provider. The backend is QNN's HTP (the Hexagon NPU): on x86-64 Linux the wheel's
HTP library is an emulator, so the results say what the NPU's graph compiler accepts and computes,
not how fast a phone is (no timings are taken).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from edge_lstm import contract
from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.errors import EdgeLstmError
from edge_lstm.export import ExportConfig, export
from edge_lstm.runtime import Classifier, StreamingClassifier

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / contract.DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "qnn_check.json")
    parser.add_argument("--limit", type=int, default=10000, help="test images per file")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        sys.exit(f"{args.checkpoint} not found: run `edge-lstm train` first")
    if importlib.util.find_spec("onnxruntime_qnn") is None:
        sys.exit("the onnxruntime-qnn plugin is not installed: pip install -e '.[qnn]'")
    work = ROOT / "runs" / "qnn-check"
    work.mkdir(parents=True, exist_ok=True)
    ck = args.checkpoint
    arts = export(ExportConfig(output=work / "model.onnx", checkpoint=ck, mobile=True))
    arts += export(ExportConfig(output=work / "fixed1.onnx", checkpoint=ck, batch=1))
    arts += export(ExportConfig(output=work / "step.onnx", checkpoint=ck, streaming=True))
    files = {Path(a.path).name: Path(a.path) for a in arts}
    test = mnist.load_split(mnist.locate(), "test")
    x, labels = test.images[: args.limit], test.labels[: args.limit]
    fp32 = Classifier(files["model.onnx"]).predict_labels(x)
    rows: list[dict[str, Any]] = []
    for name, path in files.items():
        row: dict[str, Any] = {"file": name, "size_bytes": path.stat().st_size}
        t0 = time.perf_counter()
        try:
            if name == "step.onnx":
                stream = StreamingClassifier(path, batch=len(x), provider="qnn")
                row["placement"] = stream.placement
                for t in range(28):  # MNIST rows
                    stream.push(x[:, t])
                pred = stream.predict()[0]
            else:
                clf = Classifier(path, provider="qnn")
                row["placement"] = clf.placement
                pred = clf.predict_labels(x)
        except EdgeLstmError as e:  # the provider refuses the file: that is the finding
            row["error"] = str(e)
        else:
            row["n"] = len(x)
            row["accuracy"] = float((pred == labels).mean())
            row["same_class_as_fp32_cpu"] = float((pred == fp32).mean())
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = {"command": "python bench/qnn_check.py", "backend": "htp", "results": rows, "environment": describe()}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
