"""torch -> ONNX: the dynamo exporter, constant folding, then the graph passes and contract check.

The exporter's output differs between torch versions around the LSTM (torch 2.11 wrote the head
as Gather + MatMul + Add with a stale [1, batch, 10] output shape, 2.13 as Gather + Gemm), so
graph.canonical_outputs rebuilds everything after the LSTM node from the contract: the graph's
I/O never depends on how a given torch decomposes `h[-1]`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import onnx
import torch
from torch import nn

from edge_lstm import contract
from edge_lstm.errors import ExportError
from edge_lstm.export.graph import add_lengths, canonical_outputs, check_contract, drop_zero_initial_state
from edge_lstm.export.modules import FullSequence, Step
from edge_lstm.training.model import LSTMClassifier


def quiet_export(module: nn.Module, args: tuple[torch.Tensor, ...], **kwargs: Any) -> Any:
    """torch.onnx.export (dynamo, one self-contained file) with its chatter silenced."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return torch.onnx.export(module, args, dynamo=True, external_data=False, verbose=False, **kwargs)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def to_onnx(model: LSTMClassifier, spec: contract.ModelSpec, fuse: bool, opset: int | None) -> onnx.ModelProto:
    """Export, fold and check one model; the batch axis (and a `time` axis) stays symbolic."""
    import onnxscript

    streaming = spec.kind == contract.STEP.kind
    sizes = spec.sizes
    module = (Step(model, fuse) if streaming else FullSequence(model, fuse)).eval()
    # min=2: torch 2.9's LSTM decomposition guards `batch != 1` and export refuses an axis that
    # includes 1; the ONNX graph has no such guard (verification runs batch 1). Example batch 4,
    # not 1: with batch 1 the exporter may specialise the axis to a constant.
    batch = torch.export.Dim(contract.BATCH, min=2)
    if streaming:
        h = torch.zeros(1, 4, model.config.n_hidden)
        args: tuple[torch.Tensor, ...] = (torch.rand(4, model.config.n_inputs), h, h.clone())
        dynamic = {"row": {0: batch}, "h": {1: batch}, "c": {1: batch}}
    else:
        # torch.export specialises the LSTM's time axis to the example's length; the ONNX LSTM node
        # takes any, so a model of any length is exported at 5 steps and its axis then named (add_lengths)
        args = (torch.rand(4, sizes.steps or 5, model.config.n_inputs),)
        dynamic = {"images": {0: batch}}  # forward()'s argument; input_names names it in the file
    names = {
        "input_names": [sizes.input_name] if not streaming else list(spec.input_names),
        "output_names": list(spec.output_names),
    }
    try:
        program = quiet_export(module, args, dynamic_shapes=dynamic, opset_version=opset, **names)
        # torchlib reorders the gates with Slice/Concat nodes; fold them so W and R are constants
        # (the default size limit skips tensors this big, and quantize_dynamic then silently
        # leaves the LSTM in fp32).
        onnxscript.optimizer.optimize(program.model, input_size_limit=1 << 20, output_size_limit=1 << 22)
        proto = program.model_proto
    except Exception as e:  # the exporter raises many types; all mean the same to a user
        raise ExportError(f"torch.onnx export failed: {str(e).splitlines()[0][:200]}") from None
    head = model.fc_out.state_dict()
    proto = canonical_outputs(proto, spec, head["weight"].numpy(), head["bias"].numpy())
    if not streaming:
        proto = drop_zero_initial_state(proto)
        if sizes.steps is None:
            proto = add_lengths(proto)
    check_contract(proto, spec)
    return proto
