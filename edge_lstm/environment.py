"""The environment a measurement was taken in, recorded next to every benchmark result.

Package versions come from importlib.metadata, so recording them imports neither torch nor
onnxruntime.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def describe() -> dict[str, Any]:
    ort_pkg = next((p for p in ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino") if _version(p)), None)
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "edge_lstm": _version("edge-lstm"),
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": _version(ort_pkg) if ort_pkg else None,
        "onnxruntime_package": ort_pkg,
        "openvino": _version("openvino"),
        "numpy": _version("numpy"),
    }
