"""`edge-lstm export`: PyTorch checkpoint -> verified ONNX files (fp32, int8, fp16, ORT format, streaming).

The pipeline, for every file: torch.onnx (dynamo) export -> fold constants so the LSTM's weights
are initializers -> contract checks -> metadata -> onnx.checker -> write to a temporary file ->
run it in onnxruntime against the PyTorch model -> rename into place. A file that fails
verification never appears at its destination, and the previous file there survives.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from edge_lstm import __version__, contract, mnist
from edge_lstm.checkpoint import DEFAULT_CHECKPOINT, load_model
from edge_lstm.errors import ExportError
from edge_lstm.fileio import atomic_path, sha256_file
from edge_lstm.graph import check_contract, drop_zero_initial_state, set_metadata
from edge_lstm.model import LSTMClassifier
from edge_lstm.train import logits_of


@dataclass(frozen=True)
class ExportConfig:
    output: Path = Path("export/model.onnx")
    checkpoint: Path = DEFAULT_CHECKPOINT
    opset: int | None = None  # None: the exporter's default (20 with torch 2.13)
    fuse: bool = True  # fold the input Linear into the LSTM's input weights (same function)
    streaming: bool = False  # export the one-time-step model instead of the full sequence
    int8: bool = False
    fp16: bool = False
    ort: bool = False
    verify: bool = True
    data_dir: Path | None = None


@dataclass
class Artifact:
    variant: str  # fp32, int8, fp16, ort
    path: str
    size_bytes: int = 0
    verified: bool = False
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # batch size -> max |logit diff|
    agreement: float | None = None  # share of test images with PyTorch's predicted class
    accuracy: float | None = None  # test accuracy through onnxruntime
    reference_accuracy: float | None = None  # the PyTorch model's test accuracy

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- modules that get exported
def fuse_input_layer(model: LSTMClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    """W_ih (W_in x + b_in) + b_ih = (W_ih W_in) x + (W_ih b_in + b_ih); computed in float64."""
    lstm, fc_in = model.lstm.state_dict(), model.fc_in.state_dict()
    w_ih = lstm["weight_ih_l0"].double()  # (4H, 64)
    w_in, b_in = fc_in["weight"].double(), fc_in["bias"].double()  # (64, 28), (64,)
    w = (w_ih @ w_in).float()  # (4H, 28)
    b = (w_ih @ b_in + lstm["bias_ih_l0"].double()).float()  # (4H,)
    return w, b


class FullSequence(nn.Module):
    """images (B, 28, 28) -> logits (B, 10); with `fuse`, one LSTM reads the raw rows."""

    def __init__(self, model: LSTMClassifier, fuse: bool) -> None:
        super().__init__()
        cfg = model.config
        self.fc_in: nn.Module = nn.Identity() if fuse else model.fc_in
        self.lstm = nn.LSTM(cfg.n_inputs if fuse else cfg.n_in_units, cfg.n_hidden, batch_first=True)
        self.lstm.load_state_dict(model.lstm.state_dict() if not fuse else _fused_lstm_state(model))
        self.fc_out = model.fc_out

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.fc_in(images))  # h: (1, B, 128)
        return self.fc_out(h[-1])


class Step(nn.Module):
    """One time step: row (B, 28), h, c (1, B, 128) -> logits (B, 10), h_out, c_out."""

    def __init__(self, model: LSTMClassifier, fuse: bool) -> None:
        super().__init__()
        seq = FullSequence(model, fuse)
        self.fc_in, self.lstm, self.fc_out = seq.fc_in, seq.lstm, seq.fc_out

    def forward(self, row: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, (h_out, c_out) = self.lstm(self.fc_in(row.unsqueeze(1)), (h, c))  # one step of the sequence
        return self.fc_out(h_out[-1]), h_out, c_out


def _fused_lstm_state(model: LSTMClassifier) -> dict[str, torch.Tensor]:
    w, b = fuse_input_layer(model)
    state = dict(model.lstm.state_dict())
    state["weight_ih_l0"], state["bias_ih_l0"] = w, b
    return state


# ---------------------------------------------------------------- torch -> ONNX
def _quiet_export(module: nn.Module, args: tuple[torch.Tensor, ...], **kwargs: Any) -> Any:
    """torch.onnx.export with its chatter (torchvision notices, export-time warnings) silenced."""
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


def to_onnx(model: LSTMClassifier, streaming: bool, fuse: bool, opset: int | None) -> onnx.ModelProto:
    """Export, fold and check one model; the batch axis stays symbolic."""
    import onnxscript

    module = (Step(model, fuse) if streaming else FullSequence(model, fuse)).eval()
    batch = torch.export.Dim(contract.BATCH)
    # Example batch 4, not 1: with batch 1 the exporter may specialise the axis to a constant.
    if streaming:
        h = torch.zeros(1, 4, model.config.n_hidden)
        args: tuple[torch.Tensor, ...] = (torch.rand(4, model.config.n_inputs), h, h.clone())
        dynamic = {"row": {0: batch}, "h": {1: batch}, "c": {1: batch}}
        names = {"input_names": list(contract.STEP_INPUTS), "output_names": list(contract.STEP_OUTPUTS)}
    else:
        args = (torch.rand(4, model.config.n_steps, model.config.n_inputs),)
        dynamic = {"images": {0: batch}}
        names = {"input_names": [contract.INPUT], "output_names": [contract.OUTPUT]}
    try:
        program = _quiet_export(module, args, dynamic_shapes=dynamic, opset_version=opset, **names)
        # torchlib reorders the gates with Slice/Concat nodes; fold them so W and R are constants
        # (the default size limit skips tensors this big, and quantize_dynamic then silently
        # leaves the LSTM in fp32).
        onnxscript.optimizer.optimize(program.model, input_size_limit=1 << 20, output_size_limit=1 << 22)
        proto = program.model_proto
    except Exception as e:  # the exporter raises many types; all mean the same to a user
        raise ExportError(f"torch.onnx export failed: {str(e).splitlines()[0][:200]}") from None
    if not streaming:
        proto = drop_zero_initial_state(proto)
    check_contract(proto, streaming)
    return proto


# ---------------------------------------------------------------- variants
def quantize_int8(fp32: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs a pre-processing hint that does not apply
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                quantize_dynamic(fp32, out, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        proto = onnx.load(str(out))
    ops = {n.op_type for n in proto.graph.node}
    if "DynamicQuantizeLSTM" not in ops:
        raise ExportError("int8: quantize_dynamic left the LSTM in fp32 (no DynamicQuantizeLSTM node)")
    return proto


def convert_fp16(fp32: onnx.ModelProto) -> onnx.ModelProto:
    import onnx_ir as ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto = convert_float_to_float16(fp32, keep_io_types=True)
    # The converter appends the input Casts at the end of the node list; onnx.checker (rightly)
    # wants topological order.
    model = ir.from_proto(proto)
    model.graph.sort()
    return ir.to_proto(model)


def ort_format(model_bytes: bytes, dest: Path) -> None:
    """Save in the ORT format, as onnxruntime's convert_onnx_models_to_ort tool does.

    Optimised at level 'extended', not the tool's default 'all': 'all' adds layout transforms
    specific to this machine's CPU, and the file is meant for other (edge) devices.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(dest)
    so.add_session_config_entry("session.save_model_format", "ORT")
    ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------- verification
@dataclass(frozen=True)
class Reference:
    """PyTorch's answers that every exported file is checked against."""

    probes: dict[int, tuple[np.ndarray, np.ndarray]]  # batch -> (images uint8, logits)
    test_images: np.ndarray  # (N, 28, 28) uint8
    test_labels: np.ndarray
    test_predictions: np.ndarray
    accuracy: float


def reference(model: LSTMClassifier, data_dir: Path | None) -> Reference:
    test = mnist.load_split(mnist.locate(data_dir), "test")
    logits_np = logits_of(model, test.images)
    probes, start = {}, 0
    for b in contract.PROBE_BATCHES:  # distinct real test images for every probe batch
        probes[b] = (test.images[start : start + b], logits_np[start : start + b])
        start += b
    predicted = logits_np.argmax(1)
    return Reference(probes, test.images, test.labels, predicted, float((predicted == test.labels).mean()))


def verify(model_bytes: bytes, streaming: bool, ref: Reference, tol: contract.Tolerance, art: Artifact) -> None:
    """Run the file in onnxruntime against PyTorch; raise ExportError listing every mismatch."""
    from edge_lstm.runtime import Classifier, StreamingClassifier

    def run_streaming(images: np.ndarray) -> np.ndarray:
        stream = StreamingClassifier(model_bytes, batch=len(images))
        for t in range(images.shape[1]):  # one row (time step) at a time
            stream.push(images[:, t, :])
        assert stream.last_logits is not None
        return stream.last_logits

    run = run_streaming if streaming else Classifier(model_bytes).logits
    problems = []
    for b, (images, expected) in ref.probes.items():
        got = run(images)
        if got.shape != expected.shape:
            problems.append(f"batch {b}: output shape {got.shape}, expected {expected.shape}")
            continue
        diff = float(np.abs(got - expected).max())
        art.max_abs_diff[str(b)] = diff
        if not diff <= tol.max_abs_logit:  # `not <=` also catches NaN
            problems.append(f"batch {b}: max |logit diff| {diff:.2e} > {tol.max_abs_logit:.0e}")
    predicted = np.concatenate(
        [run(ref.test_images[i : i + 2000]).argmax(1) for i in range(0, len(ref.test_images), 2000)]
    )
    art.agreement = float((predicted == ref.test_predictions).mean())
    art.accuracy = float((predicted == ref.test_labels).mean())
    art.reference_accuracy = ref.accuracy
    if art.agreement < tol.min_agreement:
        problems.append(f"predicted class agrees with PyTorch on {100 * art.agreement:.2f}% of the test set")
    if 100 * (ref.accuracy - art.accuracy) > tol.max_accuracy_drop + 1e-9:
        problems.append(f"test accuracy {100 * art.accuracy:.2f}% vs PyTorch {100 * ref.accuracy:.2f}%")
    if problems:
        raise ExportError(f"{art.variant} verification failed: " + "; ".join(problems))
    art.verified = True


# ---------------------------------------------------------------- the command
def variant_path(output: Path, variant: str) -> Path:
    """export/model.onnx -> export/model.int8.onnx, export/model.fp16.onnx, export/model.ort."""
    if variant == "fp32":
        return output
    if variant == "ort":
        return output.with_suffix(".ort")
    return output.with_suffix(f".{variant}{output.suffix or '.onnx'}")


def export(config: ExportConfig) -> list[Artifact]:
    """Write the requested files; all of them appear only if every one of them passed verification."""
    model, payload = load_model(config.checkpoint)
    fp32 = to_onnx(model, config.streaming, config.fuse, config.opset)
    metadata = {
        contract.META_KIND: "streaming-step" if config.streaming else "classifier",
        contract.META_VERSION: __version__,
        contract.META_LAYOUT: "row (batch, 28); h, c (1, batch, 128)" if config.streaming else "(batch, 28, 28): rows are time steps",
        contract.META_PREPROCESSING: contract.PREPROCESSING,
        contract.META_LABELS: json.dumps(contract.CLASS_LABELS),
        contract.META_ACCURACY: str(payload.get("metrics", {}).get("test_accuracy", "unknown")),
        contract.META_TRAIN_CONFIG: json.dumps(payload.get("train_config", {}), sort_keys=True),
        contract.META_CHECKPOINT_SHA: sha256_file(Path(config.checkpoint)),
        contract.META_FUSED: str(config.fuse).lower(),
    }  # fmt: skip
    ref = reference(model, config.data_dir) if config.verify else None

    planned: list[tuple[str, onnx.ModelProto]] = [("fp32", fp32)]
    if config.int8:
        planned.append(("int8", quantize_int8(fp32)))
    if config.fp16:
        planned.append(("fp16", convert_fp16(fp32)))

    artifacts = []
    with contextlib.ExitStack() as stack:  # every temporary file is renamed at the end, or none
        for variant, proto in planned:
            set_metadata(proto, {**metadata, contract.META_VARIANT: variant})
            try:
                onnx.checker.check_model(proto, full_check=True)
            except onnx.checker.ValidationError as e:
                raise ExportError(f"{variant}: onnx.checker rejected the model: {str(e).splitlines()[0]}") from None
            data = proto.SerializeToString()
            dest = variant_path(Path(config.output), variant)
            tmp = stack.enter_context(atomic_path(dest))
            tmp.write_bytes(data)
            artifacts.append(_finish(variant, dest, tmp, data, config, ref))
            if variant == "fp32" and config.ort:
                dest_ort = variant_path(Path(config.output), "ort")
                tmp_ort = stack.enter_context(atomic_path(dest_ort))
                ort_format(data, tmp_ort)
                artifacts.append(_finish("ort", dest_ort, tmp_ort, tmp_ort.read_bytes(), config, ref))
    return artifacts


def _finish(variant: str, dest: Path, tmp: Path, data: bytes, config: ExportConfig, ref: Reference | None) -> Artifact:
    art = Artifact(variant=variant, path=str(dest), size_bytes=tmp.stat().st_size)
    if ref is not None:
        tol = contract.TOLERANCES["fp32" if variant == "ort" else variant]
        verify(data, config.streaming, ref, tol, art)
    return art
