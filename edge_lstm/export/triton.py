"""A Triton Inference Server model repository from verified edge-lstm files (`export --triton REPO`).

    REPO/edge_lstm/config.pbtxt        platform onnxruntime_onnx, the batch axis left to Triton,
    REPO/edge_lstm/1/model.onnx        dynamic batching, one CPU instance
    REPO/edge_lstm_step/config.pbtxt   the step model with Triton's sequence batcher and implicit state
    REPO/edge_lstm_step/1/model.onnx

The step model needs another state layout for Triton, so it gets a file of its own: Triton batches
sequences along the FIRST axis of every tensor, state included, while the step model's h and c are
(1, batch, 128), ONNX LSTM's own layout. The Triton file takes h and c as (batch, 128) and unsqueezes
them for the LSTM (and squeezes h_out, c_out back); it is checked against the step model row by row.

Every written config.pbtxt is parsed with Triton's own model-configuration schema (the protobuf that
tritonclient ships) and each input, output and state is checked against its model file.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_lstm import contract
from edge_lstm.errors import ExportError
from edge_lstm.fileio import check_writable_dir

CLASSIFIER, STEP = contract.SERVED_NAMES["classifier"], contract.SERVED_NAMES["streaming-step"]
TRITON_STEP_KIND = "streaming-step-triton"  # batch-first state: not a file the edge-lstm runtime opens


@dataclass(frozen=True)
class TritonConfig:
    max_batch_size: int = 1024
    # edge-lstm's runner is fastest on 64-image chunks (bench/results/levers.json), and edge-lstm serve
    # reached its highest rate with no added delay (bench/results/serve.json): Triton gets the same.
    preferred_batch_size: int = 64
    max_queue_delay_us: int = 0
    instances: int = 1
    kind: str = "KIND_CPU"  # KIND_GPU for a GPU build of the onnxruntime backend
    stream_max_batch: int = 256
    stream_idle_us: int = 60_000_000
    sizes: contract.Sizes = contract.MNIST  # the model's (own sequences: from its checkpoint)


def classifier_config(c: TritonConfig) -> str:
    return f'''name: "{CLASSIFIER}"
platform: "onnxruntime_onnx"
max_batch_size: {c.max_batch_size}
input [ {_classifier_inputs(c.sizes)} ]
output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ {c.sizes.n_classes} ] }} ]
dynamic_batching {{
  preferred_batch_size: [ {c.preferred_batch_size} ]
  max_queue_delay_microseconds: {c.max_queue_delay_us}
}}
instance_group [ {{ count: {c.instances} kind: {c.kind} }} ]
'''


def _classifier_inputs(sizes: contract.Sizes) -> str:
    """The input(s): (steps, features), -1 steps for any length, with lengths as one number per
    sequence (Triton wants dims of at least one axis: [ 1 ] reshaped to the file's scalar per batch row)."""
    x = f'{{ name: "{sizes.input_name}" data_type: TYPE_FP32 dims: [ {sizes.steps or -1}, {sizes.features} ] }}'
    if sizes.steps is not None:
        return x
    return x + ',\n        { name: "lengths" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } }'


def step_config(c: TritonConfig) -> str:
    hidden = c.sizes.hidden

    def state(name: str) -> str:
        return (f'    {{ input_name: "{name}" output_name: "{name}_out" data_type: TYPE_FP32 dims: [ {hidden} ]\n'
                f'      initial_state: {{ name: "zeros" data_type: TYPE_FP32 dims: [ {hidden} ] zero_data: true }} }}')  # fmt: skip

    return f'''name: "{STEP}"
platform: "onnxruntime_onnx"
max_batch_size: {c.stream_max_batch}
input [ {{ name: "row" data_type: TYPE_FP32 dims: [ {c.sizes.features} ] }} ]
output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ {c.sizes.n_classes} ] }} ]
sequence_batching {{
  max_sequence_idle_microseconds: {c.stream_idle_us}
  direct {{ }}
  state [
{state("h")},
{state("c")}
  ]
}}
instance_group [ {{ count: {c.instances} kind: {c.kind} }} ]
'''


def batch_first_state(step: onnx.ModelProto) -> onnx.ModelProto:
    """The step model with h, c (and h_out, c_out) as (batch, 128): Unsqueeze/Squeeze at the edges."""
    model = onnx.ModelProto()
    model.CopyFrom(step)
    g = model.graph
    axes = "edge_lstm_axis0"
    g.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [1], [0]))
    renamed = {n: f"{n}_lstm_layout" for n in ("h", "c", "h_out", "c_out")}
    for node in g.node:
        _replace(node.input, renamed)
        _replace(node.output, renamed)
    first = [helper.make_node("Unsqueeze", [n, axes], [renamed[n]], name=f"{n}_to_lstm_layout") for n in ("h", "c")]
    last = [
        helper.make_node("Squeeze", [renamed[n], axes], [n], name=f"{n}_to_batch_first") for n in ("h_out", "c_out")
    ]
    nodes = [*first, *g.node, *last]
    del g.node[:]
    g.node.extend(nodes)
    for v in [*g.input, *g.output]:
        if v.name in ("h", "c", "h_out", "c_out"):
            dims = v.type.tensor_type.shape.dim
            del dims[0]  # (1, batch, 128) -> (batch, 128)
    for p in model.metadata_props:
        if p.key == contract.META_KIND:
            p.value = TRITON_STEP_KIND
    onnx.checker.check_model(model, full_check=True)
    return model


def _replace(names: Any, renamed: dict[str, str]) -> None:
    """Rename in place in a protobuf repeated string field (which takes no slice assignment)."""
    new = [renamed.get(n, n) for n in names]
    del names[:]
    names.extend(new)


def check_step_parity(original: bytes, triton: bytes, images: np.ndarray) -> float:
    """Feed both files the same rows for every step of images (n, T, F); the largest logit difference (0 expected)."""
    import onnxruntime as ort

    a = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(triton, providers=["CPUExecutionProvider"])
    n, hidden = len(images), a.get_inputs()[1].shape[2]
    h3 = c3 = np.zeros((1, n, hidden), np.float32)
    h2 = c2 = np.zeros((n, hidden), np.float32)
    worst = 0.0
    for t in range(images.shape[1]):
        row = np.ascontiguousarray(images[:, t], np.float32)
        la, h3, c3 = a.run(None, {"row": row, "h": h3, "c": c3})
        lb, h2, c2 = b.run(None, {"row": row, "h": h2, "c": c2})
        worst = max(worst, float(np.abs(la - lb).max()))
    return worst


def write_repository(
    repo: Path, classifier: Path, step: Path, images: np.ndarray, config: TritonConfig = TritonConfig()
) -> list[Path]:
    """Write both models of the repository (each model folder replaced whole), then validate it."""
    check_writable_dir(repo, "--triton")
    step_model = batch_first_state(onnx.load(str(step)))
    triton_step = step_model.SerializeToString()
    worst = check_step_parity(step.read_bytes(), triton_step, images)
    if worst > 1e-5:
        raise ExportError(f"the Triton step model differs from {step} by {worst:.1e}")
    written = []
    for name, data, text in ((CLASSIFIER, classifier.read_bytes(), classifier_config(config)),
                             (STEP, triton_step, step_config(config))):  # fmt: skip
        tmp = repo / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "1").mkdir(parents=True)
        (tmp / "1" / "model.onnx").write_bytes(data)
        (tmp / "config.pbtxt").write_text(text)
        validate_model_dir(tmp, name)
        final = repo / name
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        written.append(final)
    return written


def validate_model_dir(folder: Path, name: str | None = None) -> None:
    """Parse config.pbtxt with Triton's schema and check it against 1/model.onnx; ExportError if not."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise ExportError("validating a Triton repository needs tritonclient: pip install -e '.[triton]'") from None
    text = (folder / "config.pbtxt").read_text()
    try:
        cfg = text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as e:
        raise ExportError(f"{folder / 'config.pbtxt'}: not a Triton model configuration ({e})") from None
    problems = []
    if name is not None and cfg.name != name:
        problems.append(f"name {cfg.name!r}, the folder is {name!r}")
    if cfg.platform != "onnxruntime_onnx":
        problems.append(f"platform {cfg.platform!r}")
    model = onnx.load(str(folder / "1" / "model.onnx"))
    inits = {i.name for i in model.graph.initializer}
    declared = {v.name: v for v in [*model.graph.input, *model.graph.output] if v.name not in inits}
    type_name = model_config_pb2.DataType.Name

    def check(tensor_name: str, data_type: int, dims: list[int], what: str) -> None:
        v = declared.get(tensor_name)
        if v is None:
            problems.append(f"{what} {tensor_name!r} is not in the model file")
            return
        elem = v.type.tensor_type.elem_type
        if type_name(data_type) != "TYPE_" + {TensorProto.FLOAT: "FP32", TensorProto.INT32: "INT32"}.get(
            elem, str(elem)
        ):
            problems.append(
                f"{what} {tensor_name!r}: {type_name(data_type)} in the config, element type {elem} in the file"
            )
        file_dims = [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
        if cfg.max_batch_size > 0:
            if not file_dims or file_dims[0] != -1:
                problems.append(
                    f"{what} {tensor_name!r}: max_batch_size > 0 needs a symbolic first axis, the file has {file_dims}"
                )
            file_dims = file_dims[1:]
        if list(dims) != file_dims:
            problems.append(f"{what} {tensor_name!r}: dims {list(dims)} in the config, {file_dims} in the file")

    for t in cfg.input:  # a reshaped input reaches the model in the reshape's shape
        check(t.name, t.data_type, list(t.reshape.shape) if t.HasField("reshape") else list(t.dims), "input")
    for t in cfg.output:
        check(t.name, t.data_type, list(t.dims), "output")
    for s in cfg.sequence_batching.state:
        check(s.input_name, s.data_type, list(s.dims), "state input")
        check(s.output_name, s.data_type, list(s.dims), "state output")
    covered = {t.name for t in cfg.input} | {s.input_name for s in cfg.sequence_batching.state}
    missing = [n for n in (v.name for v in model.graph.input if v.name not in inits) if n not in covered]
    if missing:
        problems.append(f"model inputs {missing} are neither config inputs nor states")
    if problems:
        raise ExportError(f"{folder}: the Triton configuration does not fit the model: " + "; ".join(problems))
