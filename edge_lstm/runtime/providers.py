"""Execution providers: one registry from short names to onnxruntime EPs and their default options.

No silent fallback: asking for a provider this onnxruntime build lacks is an error that names
the pip package that has it; `runtime.Classifier` then checks where the nodes really ran.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lstm.errors import ProviderError
from edge_lstm.runtime import plugins


@dataclass(frozen=True)
class ProviderSpec:
    name: str  # the short name users type
    ep: str  # onnxruntime's execution provider name
    package: str  # what to pip install (or build) to get it
    device: str  # what it runs on, for people
    memory: str = "cpu"  # where its tensors live: OrtValue device name for IO binding ("cuda" for NVIDIA)


REGISTRY: dict[str, ProviderSpec] = {
    s.name: s
    for s in (
        ProviderSpec("cpu", "CPUExecutionProvider", "onnxruntime", "CPU (MLAS kernels)"),
        ProviderSpec("cuda", "CUDAExecutionProvider", "onnxruntime-gpu", "NVIDIA GPU (CUDA + cuDNN)", memory="cuda"),
        ProviderSpec(
            "tensorrt",
            "TensorrtExecutionProvider",
            "onnxruntime-gpu (+ TensorRT libraries)",
            "NVIDIA GPU (TensorRT)",
            memory="cuda",
        ),
        ProviderSpec(
            "openvino",
            "OpenVINOExecutionProvider",
            "onnxruntime-ep-openvino (plugin) or onnxruntime-openvino",
            "Intel CPU/GPU/NPU (OpenVINO)",
        ),
        ProviderSpec("dml", "DmlExecutionProvider", "onnxruntime-directml", "DirectX 12 GPU (Windows)"),
        ProviderSpec("coreml", "CoreMLExecutionProvider", "onnxruntime (macOS wheels)", "Apple Neural Engine / GPU"),
        ProviderSpec("rocm", "ROCMExecutionProvider", "onnxruntime-rocm", "AMD GPU (ROCm)"),
        ProviderSpec("migraphx", "MIGraphXExecutionProvider", "onnxruntime-migraphx", "AMD GPU (MIGraphX)"),
        ProviderSpec("qnn", "QNNExecutionProvider", "onnxruntime-qnn (plugin)", "Qualcomm NPU (QNN)"),
        ProviderSpec(
            "xnnpack",
            "XnnpackExecutionProvider",
            "an onnxruntime build with XNNPACK (e.g. Android/iOS packages)",
            "Arm/x86 CPU (XNNPACK)",
        ),
        ProviderSpec(
            "webgpu", "WebGpuExecutionProvider", "an onnxruntime build with WebGPU enabled", "GPU via WebGPU (Dawn)"
        ),
    )
}
_BY_EP = {s.ep: s for s in REGISTRY.values()}


# Providers whose inputs and outputs are bound on the device (IO binding), declared once here.
DEVICE_PROVIDERS = tuple(s.name for s in REGISTRY.values() if s.memory != "cpu")
# Providers that run on the host CPU with a thread pool of their own: onnxruntime's intra-op thread
# count does not apply to their nodes (OpenVINO uses its own INFERENCE_NUM_THREADS, all cores by default).
OWN_THREAD_POOL = ("openvino",)


@contextlib.contextmanager
def quiet_native_logs(verbose: bool) -> Iterator[io.StringIO]:
    """Around session creation: onnxruntime's C++ warnings (e.g. "No registered plugin EP device found",
    printed for every CUDA session) and its Python fallback notices ("Falling back to
    ['CPUExecutionProvider'] and retrying") stay out of the output unless `verbose` (the user's
    --verbose, carried by SessionConfig). The captured text is yielded, so an error message can quote it."""
    import warnings

    import onnxruntime as ort

    ort.set_default_logger_severity(0 if verbose else 3)
    buf = io.StringIO()
    if verbose:
        yield buf
        return
    with contextlib.redirect_stdout(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its UserWarnings about provider lists: the result is checked instead
        yield buf


def spec(name: str) -> ProviderSpec:
    key = name.strip().lower()
    if key in REGISTRY:
        return REGISTRY[key]
    if name in _BY_EP:  # the full onnxruntime name works too
        return _BY_EP[name]
    raise ProviderError(f"unknown provider {name!r}; choose one of: {', '.join(REGISTRY)}")


def short_name(ep: str) -> str:
    return _BY_EP[ep].name if ep in _BY_EP else ep


def available() -> list[str]:
    """onnxruntime's EP names in this installation, best first."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


OPENVINO_F32 = '{"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}'  # OpenVINO properties, as load_config takes them


def require(name: str) -> ProviderSpec:
    """The spec, or ProviderError saying what is installed and which package has the provider."""
    s = spec(name)
    have = available()
    if plugins.installed(s.name, s.ep, have) is not None:
        return s  # a plugin: its devices are checked when the session is made (plugin_devices)
    if s.ep not in have:
        import onnxruntime as ort

        # The Azure EP calls remote endpoints; it cannot run a model here, so it is not offered.
        names = ", ".join(short_name(e) for e in have if e != "AzureExecutionProvider")
        raise ProviderError(
            f"provider {s.name!r} ({s.ep}) is not in this onnxruntime build "
            f"({ort.__version__}; available: {names}); install {s.package} in place of onnxruntime"
        )
    return s


def engine_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-lstm" / "trt-engines"


def default_options(name: str, input_shapes: dict[str, list[int | str]], max_batch: int = 1024) -> dict[str, Any]:
    """Sensible default options per provider for a model with these inputs (batch axis = 'batch').

    TensorRT needs optimisation profiles that cover the dynamic batch (min 1, opt 64, max
    `max_batch`) and caches engines because building one takes seconds; fp16 stays off unless
    asked for, so its results match the fp32 model.
    """
    s = spec(name)
    if s.name in ("cuda", "rocm", "migraphx", "dml"):
        return {"device_id": 0}
    if s.name == "tensorrt":

        def profile(batch: int) -> str:
            parts = []
            for inp, dims in input_shapes.items():
                parts.append(f"{inp}:" + "x".join(str(batch) if d == "batch" else str(d) for d in dims))
            return ",".join(parts)

        return {
            "device_id": 0,
            "trt_fp16_enable": False,
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(engine_cache_dir()),
            "trt_timing_cache_enable": True,
            "trt_profile_min_shapes": profile(1),
            "trt_profile_opt_shapes": profile(min(64, max_batch)),
            "trt_profile_max_shapes": profile(max_batch),
        }
    if s.name == "openvino":
        # f32 inference, so that results match the fp32 model: OpenVINO's CPU plugin otherwise runs
        # bf16 where the CPU has AMX, and the deprecated `precision=FP32` key does not change that
        # (bench/results/openvino_check.json: max logit difference 0.077 with it, 4.8e-6 with this).
        return {"device_type": "CPU", "load_config": OPENVINO_F32}
    if s.name == "qnn":
        return {"backend_type": "htp"}
    return {}


def parse_options(pairs: list[str]) -> dict[str, str]:
    """`KEY=VALUE` strings from --provider-option into a dict (values stay strings, as ORT takes them)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ProviderError(f"--provider-option {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out
