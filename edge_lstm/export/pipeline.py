"""`edge-lstm export`: PyTorch checkpoint -> verified ONNX files (fp32, int8, fp16, ORT format, streaming).

The pipeline, for every file: torch.onnx (dynamo) export -> fold constants so the LSTM's weights
are initializers -> rebuild the head from the contract -> contract checks -> metadata ->
onnx.checker -> write to a temporary file -> run it in onnxruntime against the PyTorch model ->
rename into place. A file that fails verification never appears at its destination, and the
previous file there survives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_lstm import __version__, contract
from edge_lstm.data import mnist, sequences
from edge_lstm.data.sequences import SequenceSet
from edge_lstm.errors import ConfigError, ExportError
from edge_lstm.export.graph import check_contract, fix_batch, set_metadata
from edge_lstm.export.mobile import quantize_qdq, unrolled
from edge_lstm.export.onnx_export import to_onnx
from edge_lstm.export.variants import convert_fp16, ort_format, quantize_int8, variant_path
from edge_lstm.export.verify import Engine, Reference, compare, ort_logits, reference
from edge_lstm.fileio import atomic_path, check_writable_dir, sha256_file
from edge_lstm.training.checkpoint import load_model, recorded_test_data
from edge_lstm.training.checkpoint import sizes as checkpoint_sizes


@dataclass(frozen=True)
class ExportConfig:
    output: Path = contract.DEFAULT_MODEL
    checkpoint: Path = contract.DEFAULT_CHECKPOINT
    opset: int | None = None  # None: the exporter's default (20 with torch 2.13)
    fuse: bool = True  # fold the input Linear into the LSTM's input weights (same function)
    streaming: bool = False  # export the one-time-step model instead of the full sequence
    int8: bool = False
    fp16: bool = False
    ort: bool = False
    verify: bool = True
    data_dir: Path | None = None
    data: Path | None = None  # test sequences to verify a model of own data on (default: those it was trained with)
    batch: int | None = None  # fix the batch axis (static shapes; the LSTM gets an explicit zero state)
    mobile: bool = False  # also the unrolled phone-NPU graph, fp32 and static int8 (QDQ)
    tflite: bool = False  # also TensorFlow Lite files (fp32, dynamic-range int8) via onnx2tf; the [tflite] extra
    triton: Path | None = None  # also a Triton model repository here (the classifier and the step model)
    triton_backend: str = "onnxruntime"  # or "python": the files run by onnxruntime in Triton's Python backend

    def validate(self) -> None:
        if Path(self.output).suffix.lower() != ".onnx":
            raise ConfigError(
                f"{self.output}: the output name must end in .onnx (variants get .int8.onnx, .fp16.onnx, .ort)"
            )
        if self.batch is not None and not 1 <= self.batch <= 4096:
            raise ConfigError(f"--batch must be between 1 and 4096, got {self.batch}")
        if (self.mobile or self.tflite) and self.streaming:
            raise ConfigError("--mobile and --tflite are full-sequence variants; export them without --streaming")
        if self.triton_backend not in ("onnxruntime", "python"):
            raise ConfigError(f"--triton-backend must be onnxruntime or python, got {self.triton_backend!r}")
        if self.triton is not None and (self.streaming or self.batch is not None):
            raise ConfigError(
                "--triton writes the classifier and the step model with a batch axis; drop --streaming and --batch"
            )


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


def export(config: ExportConfig) -> list[Artifact]:
    """Write the requested files; all of them appear only if every one of them passed verification."""
    config.validate()
    check_writable_dir(Path(config.output).parent, "OUTPUT")  # before seconds of export work, not after
    model, payload = load_model(config.checkpoint)
    sizes = checkpoint_sizes(payload)
    if not sizes.image and (config.mobile or config.tflite):
        raise ConfigError(
            "--mobile and --tflite are for image models (MNIST's fixed 28 x 28) in this version; "
            "export a model of your own data without them"
        )
    spec = contract.spec("streaming-step" if config.streaming else "classifier", sizes)
    fp32 = to_onnx(model, spec, config.fuse, config.opset)
    tflite = _tflite(fp32, config) if config.tflite else {}  # converted first: it fails early without the extra
    if config.batch is not None:
        fp32 = fix_batch(fp32, config.batch)
        check_contract(fp32, spec, batch=config.batch)
    metadata = {
        contract.META_KIND: spec.kind,
        contract.META_VERSION: __version__,
        contract.META_LAYOUT: spec.layout,
        contract.META_PREPROCESSING: contract.PREPROCESSING if sizes.image else SEQUENCE_PREPROCESSING,
        contract.META_LABELS: json.dumps(list(sizes.classes)),
        contract.META_ACCURACY: str(payload.get("metrics", {}).get("test_accuracy", "unknown")),
        contract.META_TRAIN_CONFIG: json.dumps(payload.get("train_config", {}), sort_keys=True),
        contract.META_CHECKPOINT_SHA: sha256_file(Path(config.checkpoint)),
        contract.META_FUSED: str(config.fuse).lower(),
    }
    if not sizes.image:
        metadata[contract.META_SIZES] = sizes.to_json()
    ref = reference(model, config.data_dir, _test_sequences(config, payload, sizes)) if config.verify else None

    planned: list[tuple[str, onnx.ModelProto]] = [("fp32", fp32)]
    if config.int8:
        planned.append(("int8", quantize_int8(fp32, per_channel=not sizes.image)))
    if config.fp16:
        planned.append(("fp16", convert_fp16(fp32)))
    if config.mobile:
        batch = config.batch or 1
        mobile = unrolled(model, batch)
        check_contract(mobile, spec, batch=batch, recurrent_node=False)
        train = mnist.load_split(mnist.locate(config.data_dir), "train").images
        n = max(batch, 256 // batch * batch)  # about 256 images, a whole number of batches
        calibration = train[:: len(train) // n][:n]  # spread over the training set
        planned += [("mobile", mobile), ("mobile-int8", quantize_qdq(mobile, calibration))]

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
            artifacts.append(
                _finish(variant, dest, tmp, functools.partial(ort_logits, data, config.streaming, variant), ref)
            )
            if variant == "fp32" and config.ort:
                dest_ort = variant_path(Path(config.output), "ort")
                tmp_ort = stack.enter_context(atomic_path(dest_ort))
                ort_format(data, tmp_ort)
                ort_data = tmp_ort.read_bytes()
                artifacts.append(
                    _finish(
                        "ort", dest_ort, tmp_ort, functools.partial(ort_logits, ort_data, config.streaming, "ort"), ref
                    )
                )
        for variant, data in tflite.items():
            dest = variant_path(Path(config.output), variant)
            tmp = stack.enter_context(atomic_path(dest))
            tmp.write_bytes(data)
            artifacts.append(_finish(variant, dest, tmp, functools.partial(_litert, data), ref))
    if config.triton is not None:  # the step model checked on 64 test inputs (own data: random ones)
        probe = (
            mnist.load_split(mnist.locate(config.data_dir), "test").images[:64].astype(np.float32) / 255
            if sizes.image
            else np.random.default_rng(0).standard_normal((64, sizes.steps or 16, sizes.features))
        )
        artifacts += _triton(config, sizes, probe.astype(np.float32))
    return artifacts


SEQUENCE_PREPROCESSING = (
    "none: raw feature values as in the training data (each feature's standardisation is folded into the "
    "input layer); sequences padded with anything after their `lengths`"
)


def _test_sequences(config: ExportConfig, payload: dict[str, Any], sizes: contract.Sizes) -> SequenceSet | None:
    """The sequences a model of own data is verified on: --data, else the test file it was trained with."""
    if sizes.image:
        return None
    path = config.data or recorded_test_data(payload)
    if path is None:
        raise ConfigError(
            "verifying this model needs its test sequences and the file it was trained with is not there: "
            "give them with --data FILE, or skip verification with --no-verify"
        )
    return sequences.for_model(Path(path), sizes, Path(config.checkpoint))


def _triton(config: ExportConfig, sizes: contract.Sizes, probe: np.ndarray) -> list[Artifact]:
    """The repository from the verified classifier just written and a verified step model."""
    from edge_lstm.export.triton import write_repository
    from edge_lstm.triton.config import TritonConfig

    with tempfile.TemporaryDirectory() as tmp:
        step = Path(tmp) / "step.onnx"
        export(dataclasses.replace(config, output=step, streaming=True, triton=None, int8=False, fp16=False, ort=False))
        assert config.triton is not None  # the caller's condition
        folders = write_repository(
            config.triton,
            Path(config.output),
            step,
            probe,
            TritonConfig(sizes=sizes, backend=config.triton_backend),
        )
    return [
        Artifact("triton", str(f), sum(p.stat().st_size for p in f.rglob("*") if p.is_file()), verified=config.verify)
        for f in folders
    ]


def _tflite(fp32: onnx.ModelProto, config: ExportConfig) -> dict[str, bytes]:
    from edge_lstm.export.tflite import convert

    fixed = onnx.ModelProto()
    fixed.CopyFrom(fp32)
    return convert(fix_batch(fixed, config.batch or 1))


def _litert(data: bytes) -> Engine:
    from edge_lstm.litert import litert_logits

    run = litert_logits(data)
    return lambda x, lengths: run(x)


def _finish(variant: str, dest: Path, tmp: Path, engine: Callable[[], Engine], ref: Reference | None) -> Artifact:
    """The written file's artifact; verified against PyTorch (when asked) in `engine()`, its runner."""
    art = Artifact(variant=variant, path=str(dest), size_bytes=tmp.stat().st_size)
    if ref is not None:
        tol = contract.TOLERANCES[{"ort": "fp32", "mobile": "fp32"}.get(variant, variant)]
        verdict = compare(engine(), ref, tol, variant)
        art.max_abs_diff, art.agreement, art.accuracy = verdict.max_abs_diff, verdict.agreement, verdict.accuracy
        art.reference_accuracy, art.verified = ref.accuracy, True
    return art
