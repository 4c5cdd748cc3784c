"""`edge-lstm inspect`: what a user needs to know about a model file, without torch."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ModelFileError
from edge_lstm.fileio import not_a_file, sha256_file


def _tensor_info(value: Any) -> dict[str, Any]:
    t = value.type.tensor_type
    return {
        "name": value.name,
        "dtype": contract.ONNX_DTYPES.get(t.elem_type, str(t.elem_type)),
        "shape": [d.dim_param or d.dim_value for d in t.shape.dim],
    }


def inspect_file(path: Path) -> dict[str, Any]:
    path = Path(path)
    if (why := not_a_file(path)) is not None:
        raise ModelFileError(f"model file {path} {why}")
    if path.stat().st_size == 0:
        raise ModelFileError(f"{path}: empty file")
    info: dict[str, Any] = {"path": str(path), "size_bytes": path.stat().st_size, "sha256": sha256_file(path)}
    if path.suffix.lower() == ".ort":
        return {**info, **_inspect_ort(path)}
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(
            f"{path}: not a loadable ONNX/ORT model (truncated or corrupted: {str(e)[:120]})"
        ) from None
    if not model.graph.node:
        raise ModelFileError(f"{path}: not a loadable ONNX/ORT model (no graph; truncated or another format)")
    inits = {t.name for t in model.graph.initializer}
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    info.update(
        format="onnx",
        ir_version=model.ir_version,
        opsets={o.domain or "ai.onnx": o.version for o in model.opset_import},
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=[_tensor_info(v) for v in model.graph.input if v.name not in inits],
        outputs=[_tensor_info(v) for v in model.graph.output],
        operators=dict(Counter(n.op_type for n in model.graph.node).most_common()),
        nodes=len(model.graph.node),
        parameters=params,
        metadata={p.key: _maybe_json(p.value) for p in model.metadata_props},
    )
    return info


def _inspect_ort(path: Path) -> dict[str, Any]:
    """ORT-format files are flatbuffers: read them through an onnxruntime session."""
    import onnxruntime as ort

    try:
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's pybind errors
        raise ModelFileError(f"{path}: not a loadable ONNX/ORT model ({str(e).splitlines()[0][:160]})") from None
    try:
        custom = dict(sess.get_modelmeta().custom_metadata_map)
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: its metadata is not valid text (a corrupted file)") from None

    def io(values: Any) -> list[dict[str, Any]]:
        names = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}
        return [{"name": v.name, "dtype": names.get(v.type, v.type), "shape": v.shape} for v in values]

    return {
        "format": "ort",
        "inputs": io(sess.get_inputs()),
        "outputs": io(sess.get_outputs()),
        "operators": None,  # not exposed for ORT format; inspect the .onnx it came from
        "metadata": {k: _maybe_json(v) for k, v in custom.items()},
    }


def inspect_model(path: Path, provider: str = "cpu", verbose: bool = False) -> dict[str, Any]:
    """`edge-lstm inspect`: the file's description, checked against the contract, with where each node runs."""
    from edge_lstm.runtime.session import SessionConfig, open_model

    info = inspect_file(path)
    config = SessionConfig(
        provider=provider, check_placement=True, allow_fallback=True, cuda_graph=False, verbose=verbose
    )
    opened = open_model(path, config)  # the contract is checked here: a foreign file is refused
    info["kind"] = opened.spec.kind
    info["placement"] = opened.placement
    return info


def _maybe_json(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def format_text(info: dict[str, Any]) -> str:
    lines = [
        f"{info['path']}  ({info['size_bytes'] / 1024:.1f} KiB, {info.get('format', '?')})",
        f"sha256     {info['sha256']}",
    ]
    if "opsets" in info:
        lines.append("opsets     " + ", ".join(f"{d} {v}" for d, v in info["opsets"].items()))
        lines.append(f"parameters {info['parameters']:,} in {info['nodes']} nodes")
    for kind in ("inputs", "outputs"):
        for v in info.get(kind, []):
            shape = "(" + ", ".join(str(d) for d in v["shape"]) + ")"
            lines.append(f"{kind[:-1]:<10} {v['name']:<8} {v['dtype']:<8} {shape}")
    if info.get("operators"):
        lines.append("operators  " + ", ".join(f"{op} x{n}" for op, n in info["operators"].items()))
    for key, value in info.get("metadata", {}).items():
        text = json.dumps(value) if not isinstance(value, str) else value
        lines.append(f"meta       {key} = {text if len(text) < 160 else text[:157] + '...'}")
    if "placement" in info:
        for prov, ops in info["placement"].items():
            lines.append(f"placement  {prov}: " + ", ".join(f"{op} x{n}" for op, n in ops.items()))
    return "\n".join(lines)


def file_arch(path: Path) -> Arch | None:
    """The arch a model file declares in its metadata (MNIST's without them); None if it cannot be
    read here (the runner that opens it later says why, in one line)."""
    from edge_lstm.runtime.session import peek

    peeked = peek(path)
    try:
        return None if peeked is None else contract.arch_from_metadata(peeked[1])
    except (ValueError, KeyError, TypeError):  # unreadable arch: the checked open names them
        return None
