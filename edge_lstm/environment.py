"""The environment a measurement was taken in, recorded next to every benchmark result.

Package versions come from importlib.metadata, so recording them imports neither torch nor
onnxruntime.
"""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
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


def providing_distribution(module: str) -> tuple[str | None, str | None]:
    """(distribution, version) of the installed package whose files include the module that
    `import module` would load. Several distributions provide `onnxruntime` (onnxruntime,
    onnxruntime-gpu, -openvino, ...), and more than one can be installed at once: the name alone
    does not say which one runs. Found from the import spec and the distributions' file lists,
    without importing the module."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None, None
    if spec is None or spec.origin is None:
        return None, None
    origin = os.path.realpath(spec.origin)
    found = [
        dist
        for dist in metadata.distributions()
        for f in dist.files or ()
        if f.parts == (module, "__init__.py") and os.path.realpath(str(dist.locate_file(f))) == origin
    ]
    if len(found) > 1:  # installed over each other in one folder: the file's own __version__ decides
        text = Path(origin).read_text(errors="replace")
        declared = re.search(r"^__version__\s*=\s*[\"']([^\"']+)", text, re.M)
        found = [d for d in found if declared and d.version == declared.group(1)] or found
    return (found[0].metadata["Name"], found[0].version) if found else (None, None)


def describe() -> dict[str, Any]:
    ort_pkg, ort_version = providing_distribution("onnxruntime")
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "edge_lstm": _version("edge-lstm"),
        "torch": _version("torch"),
        "onnx": _version("onnx"),
        "onnxruntime": ort_version,
        "onnxruntime_package": ort_pkg,
        "openvino": _version("openvino"),
        "onnxruntime_ep_openvino": _version("onnxruntime-ep-openvino"),  # the plugin (--provider openvino)
        "onnxruntime_qnn": _version("onnxruntime-qnn"),  # the plugin (--provider qnn)
        "numpy": _version("numpy"),
        # the serving and cluster stacks, where installed (bench/serve.py, bench/cluster.py)
        "uvicorn": _version("uvicorn"),
        "starlette": _version("starlette"),
        "ray": _version("ray"),
    }


def available_memory() -> int | None:
    """Bytes of memory free for a new allocation (Linux's MemAvailable); None where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
