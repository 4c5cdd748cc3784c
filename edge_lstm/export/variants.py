"""The edge variants of an fp32 graph: dynamic int8, fp16 weights, and the ORT format."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx

from edge_lstm import contract
from edge_lstm.errors import ExportError
from edge_lstm.export.graph import strip_intermediate_shapes
from edge_lstm.export.graph_parts import BOOKKEEPING


def variant_path(output: Path, variant: str) -> Path:
    """export/model.onnx -> model.int8.onnx, model.fp16.onnx, model.ort, model.mobile.onnx, model.mobile.int8.onnx."""
    if variant == "fp32":
        return output
    if variant == "ort":
        return output.with_suffix(".ort")
    if variant.endswith("tflite"):  # tflite -> model.tflite, int8-tflite -> model.int8.tflite
        return output.with_suffix(".int8.tflite" if variant.startswith("int8") else ".tflite")
    return output.with_suffix(f".{variant.replace('-', '.')}{output.suffix or '.onnx'}")


def quantize_int8(
    fp32: onnx.ModelProto, per_channel: bool = False, op_types: tuple[str, ...] | None = None
) -> onnx.ModelProto:
    """Dynamic int8 (weights int8, activations quantized at run time). per_channel: a scale per
    output row; models of own sequences use it (their small test sets leave verification little
    room: a JapaneseVowels model per tensor failed it, per channel passed), MNIST's files stay as
    they were. op_types: the operators quantized (None: every one quantize_dynamic knows)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint that does not apply
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                quantize_dynamic(
                    fp32,
                    out,
                    weight_type=QuantType.QInt8,
                    per_channel=per_channel,
                    op_types_to_quantize=None if op_types is None else list(op_types),
                )
        finally:
            root.setLevel(level)
        proto = onnx.load(str(out))
    if any(n.op_type == "LSTM" for n in proto.graph.node):
        raise ExportError("int8: quantize_dynamic left an LSTM layer in fp32 (no DynamicQuantizeLSTM node)")
    strip_intermediate_shapes(proto.graph)
    return proto


def convert_fp16(fp32: onnx.ModelProto) -> onnx.ModelProto:
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = [n.name for n in fp32.graph.node if n.name.startswith(BOOKKEEPING)]
        proto = convert_float_to_float16(fp32, keep_io_types=True, node_block_list=kept or None)
    if kept:
        _float32_between(proto.graph, set(kept))
    # The converter appends the input Casts at the end of the node list; onnx.checker (rightly)
    # wants topological order.
    model = ir.from_proto(proto)
    model.graph.sort()
    proto = ir.to_proto(model)
    # The converter leaves value_info typed float16 where a node still computes float32: drop them.
    strip_intermediate_shapes(proto.graph)
    return proto


def _float32_between(graph: onnx.GraphProto, kept: set[str]) -> None:
    """The converter casts every output of a node it keeps in float32 (and every input) to float16 and
    back before the next one: where a float32 value is cast to float16 and straight back, it is read
    directly (the Cast to float32 becomes an Identity; the Cast to float16, unread, goes)."""
    made = {out: n for n in graph.node for out in n.output}
    inputs = {i.name for i in graph.input}  # float32 as they were (keep_io_types)
    for node in graph.node:
        before = made.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if before is None or before.op_type != "Cast" or not before.input:
            continue
        source = made.get(before.input[0])
        exact = before.input[0] in inputs or (source is not None and source.name in kept)
        to = next(a.i for a in node.attribute if a.name == "to")
        if exact and to == onnx.TensorProto.FLOAT:
            node.op_type, node.input[0] = "Identity", before.input[0]
            del node.attribute[:]
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    unread = [n for n in graph.node if n.op_type == "Cast" and not any(o in read for o in n.output)]
    for n in unread:
        graph.node.remove(n)


def ort_format(model_bytes: bytes) -> bytes:
    """The file in the ORT format, as onnxruntime's convert_onnx_models_to_ort tool writes it.

    Optimised at level 'extended', not the tool's default 'all': 'all' adds layout transforms
    specific to this machine's CPU, and the file is meant for other (edge) devices.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "model.ort"
        so.optimized_model_filepath = str(dest)
        so.add_session_config_entry("session.save_model_format", "ORT")
        ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        return dest.read_bytes()


# int8 of a model of own sequences: dynamic int8 schemes, tried in this order until one is within the int8
# tolerance (export's verification against PyTorch on the test sequences): everything; the convolutions
# in fp32 (their activations' ranges are the widest); only the recurrent layer in int8 (the input
# projection, where it is not fused, and the head in fp32). The file says which one it holds
# (edge_lstm.int8_scheme), export prints it.
INT8_SCHEMES: tuple[tuple[str, tuple[str, ...] | None, str], ...] = (
    ("all", None, "every layer in int8"),
    ("fp32-conv", ("LSTM", "MatMul", "Gemm"), "the convolutions in fp32, the rest in int8"),
    ("lstm", ("LSTM",), "the recurrent layer in int8, the layers around it in fp32"),
)


def first_passing_int8(
    fp32: onnx.ModelProto, conv: bool, check: Callable[[onnx.ModelProto], None]
) -> tuple[onnx.ModelProto, str]:
    """(the first scheme's file that `check` lets through, what it holds and why the ones before failed);
    ExportError with every scheme's numbers when none does."""
    failed = []
    for name, ops, says in INT8_SCHEMES:
        if name == "fp32-conv" and not conv:
            continue
        proto = quantize_int8(fp32, per_channel=True, op_types=ops)
        try:
            check(proto)
        except ExportError as e:
            failed.append(f"{name}: {str(e).removeprefix('int8 verification failed: ')}")
            continue
        proto.metadata_props.add(key=contract.META_INT8_SCHEME, value=name)
        return proto, f"{says} (int8 scheme {name}" + (f"; {'; '.join(failed)}" if failed else "") + ")"
    raise ExportError(f"int8 verification failed for every scheme tried ({' | '.join(failed)})")
