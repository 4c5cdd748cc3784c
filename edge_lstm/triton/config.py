"""Triton model configurations (config.pbtxt) for edge-lstm's two models, and their check.

Two backends, the same model names and tensors, so a client cannot tell them apart:
- "onnxruntime": Triton's onnxruntime backend runs the file (what Triton's standard container has);
  the step model's state is Triton's implicit state, batch-first (export/triton.py writes that file).
- "python": Triton's Python backend runs backend/classifier.py or backend/step.py, which run the
  file with onnxruntime (the `tritonserver` of the nvidia-pytriton wheel has only this backend); the
  step model's state is kept by step.py per correlation id, under the "oldest" sequence batcher.

Every written config.pbtxt is parsed with Triton's own model-configuration schema (the protobuf that
tritonclient ships) and each input, output and state is checked against its model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import TensorProto

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ExportError

CLASSIFIER, STEP = contract.SERVED_NAMES["classifier"], contract.SERVED_NAMES["streaming-step"]
BACKENDS = ("onnxruntime", "python")


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
    arch: Arch = contract.MNIST  # the model's (own sequences: from its checkpoint)
    backend: str = "onnxruntime"
    name: str | None = None  # the model's name in the repository (None: edge_lstm or edge_lstm_step)

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ExportError(f"unknown Triton backend {self.backend!r}: choose {' or '.join(BACKENDS)}")


def _runs_on(c: TritonConfig) -> str:
    return 'platform: "onnxruntime_onnx"' if c.backend == "onnxruntime" else 'backend: "python"'


def classifier_config(c: TritonConfig) -> str:
    return f'''name: "{c.name or CLASSIFIER}"
{_runs_on(c)}
max_batch_size: {c.max_batch_size}
input [ {_classifier_inputs(c.arch)} ]
output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ {c.arch.n_classes} ] }} ]
dynamic_batching {{
  preferred_batch_size: [ {c.preferred_batch_size} ]
  max_queue_delay_microseconds: {c.max_queue_delay_us}
}}
instance_group [ {{ count: {c.instances} kind: {c.kind} }} ]
'''


def _classifier_inputs(arch: Arch) -> str:
    """The input(s): (steps, features), -1 steps for any length, with lengths as one number per
    sequence (Triton wants dims of at least one axis: [ 1 ] reshaped to the file's scalar per batch row)."""
    x = f'{{ name: "{arch.input_name}" data_type: TYPE_FP32 dims: [ {arch.steps or -1}, {arch.features} ] }}'
    if arch.steps is not None:
        return x
    return x + ',\n        { name: "lengths" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } }'


def step_config(c: TritonConfig) -> str:
    if c.backend == "python":  # the state lives in step.py; Triton supplies the sequence controls
        control = "\n".join(
            f'    {{ name: "{name}" control [ {{ kind: {kind} {value} }} ] }}{sep}'
            for name, kind, value, sep in (
                ("START", "CONTROL_SEQUENCE_START", "int32_false_true: [ 0, 1 ]", ","),
                ("END", "CONTROL_SEQUENCE_END", "int32_false_true: [ 0, 1 ]", ","),
                ("CORRID", "CONTROL_SEQUENCE_CORRID", "data_type: TYPE_UINT64", ""),
            )
        )
        strategy = (
            f"  oldest {{ max_candidate_sequences: {c.stream_max_batch} "
            f"preferred_batch_size: [ {c.preferred_batch_size} ] max_queue_delay_microseconds: 0 }}\n"
            f"  control_input [\n{control}\n  ]"
        )
        steps = f'parameters {{ key: "steps" value: {{ string_value: "{c.arch.steps or ""}" }} }}\n'
    else:
        # batch-first state, as export/triton.py writes the file: (batch, hidden) for one layer,
        # (batch, layers, hidden) for several (a front-end's: (batch, values), (batch, 1, values))
        def state(name: str) -> str:
            lead, values = c.arch.state_dims(name)
            dims = f"{values}" if c.arch.layers == 1 else f"{lead}, {values}"
            return (
                f'    {{ input_name: "{name}" output_name: "{name}_out" data_type: TYPE_FP32 dims: [ {dims} ]\n'
                f'      initial_state: {{ name: "zeros" data_type: TYPE_FP32 dims: [ {dims} ] zero_data: true }} }}'
            )

        states = ",\n".join(state(n) for n in c.arch.state_names)
        strategy = f"  direct {{ }}\n  state [\n{states}\n  ]"
        steps = ""
    return f'''name: "{c.name or STEP}"
{_runs_on(c)}
max_batch_size: {c.stream_max_batch}
input [ {{ name: "row" data_type: TYPE_FP32 dims: [ {c.arch.features} ] }} ]
output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ {c.arch.n_classes} ] }} ]
sequence_batching {{
  max_sequence_idle_microseconds: {c.stream_idle_us}
{strategy}
}}
{steps}instance_group [ {{ count: {c.instances} kind: {c.kind} }} ]
'''


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
    python = cfg.backend == "python"
    if python and not (folder / "1" / "model.py").is_file():
        problems.append("backend 'python' without a 1/model.py")
    if not python and cfg.platform != "onnxruntime_onnx":
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
    if python and cfg.HasField("sequence_batching"):
        covered |= set(contract.STATE_NAMES)  # step.py holds the state itself
    missing = [n for n in (v.name for v in model.graph.input if v.name not in inits) if n not in covered]
    if missing:
        problems.append(f"model inputs {missing} are neither config inputs nor states")
    if problems:
        raise ExportError(f"{folder}: the Triton configuration does not fit the model: " + "; ".join(problems))
