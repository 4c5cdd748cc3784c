"""A Triton Inference Server model repository from verified edge-lstm files (`export --triton REPO`).

    REPO/edge_lstm/config.pbtxt        platform onnxruntime_onnx, the batch axis left to Triton,
    REPO/edge_lstm/1/model.onnx        dynamic batching, one CPU instance
    REPO/edge_lstm_step/config.pbtxt   the step model with Triton's sequence batcher and implicit state
    REPO/edge_lstm_step/1/model.onnx

The step model needs another state layout for Triton, so it gets a file of its own: Triton batches
sequences along the FIRST axis of every tensor, state included, while the step model's state tensors
(LSTM h and c, GRU h) are (layers, batch, hidden), ONNX's own layout. The Triton file takes each as
(batch, hidden) for one layer (unsqueezed for the recurrent node, squeezed back) or (batch, layers,
hidden) for several (transposed both ways); it is checked against the step model row by row.

With `--triton-backend python` the repository holds the files as they are instead, each beside a
model.py that runs it in Triton's Python backend (edge_lstm/triton/: what the `tritonserver` of the
nvidia-pytriton wheel, and `edge-lstm serve --triton`, run).

Every written config.pbtxt is parsed with Triton's own model-configuration schema (the protobuf that
tritonclient ships) and each input, output and state is checked against its model file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ExportError
from edge_lstm.fileio import check_writable_dir
from edge_lstm.triton.config import CLASSIFIER, STEP, TritonConfig, classifier_config, step_config
from edge_lstm.triton.repository import install_model, write_python_repository

TRITON_STEP_KIND = "streaming-step-triton"  # batch-first state: not a file the edge-lstm runtime opens


def batch_first_state(step: onnx.ModelProto, arch: Arch) -> onnx.ModelProto:
    """The step model with its state tensors batch-first: Unsqueeze/Squeeze (one layer) or
    Transpose (several) at the edges."""
    model = onnx.ModelProto()
    model.CopyFrom(step)
    g = model.graph
    names = (*arch.state_names, *arch.state_outputs)
    renamed = {n: f"{n}_lstm_layout" for n in names}
    for node in g.node:
        _replace(node.input, renamed)
        _replace(node.output, renamed)
    if arch.layers == 1:
        axes = "edge_lstm_axis0"
        g.initializer.append(helper.make_tensor(axes, TensorProto.INT64, [1], [0]))
        first = [
            helper.make_node("Unsqueeze", [n, axes], [renamed[n]], name=f"{n}_to_lstm_layout") for n in arch.state_names
        ]
        last = [
            helper.make_node("Squeeze", [renamed[n], axes], [n], name=f"{n}_to_batch_first") for n in arch.state_outputs
        ]
    else:  # (batch, layers, hidden) <-> (layers, batch, hidden)
        first = [
            helper.make_node("Transpose", [n], [renamed[n]], name=f"{n}_to_lstm_layout", perm=[1, 0, 2])
            for n in arch.state_names
        ]
        last = [
            helper.make_node("Transpose", [renamed[n]], [n], name=f"{n}_to_batch_first", perm=[1, 0, 2])
            for n in arch.state_outputs
        ]
    nodes = [*first, *g.node, *last]
    del g.node[:]
    g.node.extend(nodes)
    for v in [*g.input, *g.output]:
        if v.name in names:
            dims = v.type.tensor_type.shape.dim
            if arch.layers == 1:
                del dims[0]  # (1, batch, hidden) -> (batch, hidden)
            else:
                layers, batch = onnx.TensorShapeProto.Dimension(), onnx.TensorShapeProto.Dimension()
                layers.CopyFrom(dims[0])
                batch.CopyFrom(dims[1])
                dims[0].CopyFrom(batch)
                dims[1].CopyFrom(layers)
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


def check_step_parity(original: bytes, triton: bytes, images: np.ndarray, arch: Arch) -> float:
    """Feed both files the same rows for every step of images (n, T, F); the largest logit difference (0 expected)."""
    import onnxruntime as ort

    a = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(triton, providers=["CPUExecutionProvider"])
    n = len(images)
    state_a = arch.zero_state(n)  # (layers, n, hidden) each
    state_b = tuple(s.transpose(1, 0, 2) if arch.layers > 1 else s[0] for s in state_a)
    worst = 0.0
    for t in range(images.shape[1]):
        row = np.ascontiguousarray(images[:, t], np.float32)
        la, *state_a = a.run(None, {"row": row, **dict(zip(arch.state_names, state_a, strict=True))})
        lb, *state_b = b.run(None, {"row": row, **dict(zip(arch.state_names, state_b, strict=True))})
        worst = max(worst, float(np.abs(la - lb).max()))
    return worst


def write_repository(
    repo: Path, classifier: Path, step: Path, images: np.ndarray, config: TritonConfig = TritonConfig()
) -> list[Path]:
    """Write both models of the repository (each model folder replaced whole), then validate it."""
    config.validate()
    if config.backend == "python":  # the files as they are, each beside the model.py that runs it
        return write_python_repository(repo, classifier, step, config)
    check_writable_dir(repo, "--triton")
    step_model = batch_first_state(onnx.load(str(step)), config.arch)
    triton_step = step_model.SerializeToString()
    worst = check_step_parity(step.read_bytes(), triton_step, images, config.arch)
    if worst > 1e-5:
        raise ExportError(f"the Triton step model differs from {step} by {worst:.1e}")
    return [
        install_model(repo, CLASSIFIER, classifier.read_bytes(), classifier_config(config)),
        install_model(repo, STEP, triton_step, step_config(config)),
    ]
