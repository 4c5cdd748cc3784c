"""`edge-lstm export`: a checkpoint -> verified model files, one per requested target (targets.py).

For every file: the graph (graph_build.py, or the entry's own build) -> metadata (the architecture
among it) -> onnx.checker -> a temporary file -> run in its engine against the PyTorch model -> renamed
into place. A file that fails verification never appears at its destination, and the previous file
there survives. The base file (fp32, or the step model) comes first and every other target needs it;
a later target that fails costs nothing that passed: the others are written, and the error names
what was written and what failed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_lstm import __version__, contract
from edge_lstm.arch import Arch
from edge_lstm.data import mnist, sequences
from edge_lstm.data.sequences import SequenceSet
from edge_lstm.errors import ConfigError, EdgeLstmError, ExportError
from edge_lstm.export import targets
from edge_lstm.export.graph import check_contract, fix_batch, set_metadata
from edge_lstm.export.graph_build import MIN_OPSET, classifier_graph, step_graph
from edge_lstm.export.variants import variant_path
from edge_lstm.export.verify import Engine, Reference, Verdict, compare, ort_logits, reference
from edge_lstm.fileio import atomic_path, check_writable_dir, sha256_file
from edge_lstm.training.checkpoint import arch as checkpoint_arch
from edge_lstm.training.checkpoint import load_model, recorded_test_data


@dataclass(frozen=True)
class ExportConfig:
    output: Path = contract.DEFAULT_MODEL
    checkpoint: Path = contract.DEFAULT_CHECKPOINT
    opset: int | None = None  # None: graph_build.DEFAULT_OPSET
    fuse: bool = True  # fold the input Linear into the first layer's input weights (same function)
    streaming: bool = False  # export the one-time-step model instead of the full sequence
    int8: bool = False
    fp16: bool = False
    ort: bool = False
    verify: bool = True
    data_dir: Path | None = None
    data: Path | None = None  # test sequences to verify a model of own data on (default: those it was trained with)
    batch: int | None = None  # fix the batch axis (static shapes; each layer gets an explicit zero state)
    mobile: bool = False  # also the unrolled phone-NPU graph, fp32 and static int8 (QDQ)
    tflite: bool = False  # also TensorFlow Lite files (fp32, dynamic-range int8) via onnx2tf; the [tflite] extra
    triton: Path | None = None  # also a Triton model repository here (the classifier and the step model)
    triton_backend: str = "onnxruntime"  # or "python": the files run by onnxruntime in Triton's Python backend
    tflite_micro: bool = False  # also TFLite Micro's full-integer file, its C array and arena (OUTPUT.tflm/)
    mcu: Path | None = None  # also the C libraries for microcontrollers here (fp32/, int8/)
    board: str | None = None  # with mcu: refuse a library that does not fit this board's flash and RAM

    def validate(self) -> None:
        if Path(self.output).suffix.lower() != ".onnx":
            raise ConfigError(
                f"{self.output}: the output name must end in .onnx (variants get .int8.onnx, .fp16.onnx, .ort)"
            )
        if self.batch is not None and not 1 <= self.batch <= 4096:
            raise ConfigError(f"--batch must be between 1 and 4096, got {self.batch}")
        if self.opset is not None and self.opset < MIN_OPSET:
            raise ConfigError(f"--opset must be {MIN_OPSET} or newer (LSTM-14, GRU-14), got {self.opset}")
        if self.triton_backend not in ("onnxruntime", "python"):
            raise ConfigError(f"--triton-backend must be onnxruntime or python, got {self.triton_backend!r}")
        if self.board is not None:
            if self.mcu is None:
                raise ConfigError("--board checks the C libraries of --mcu DIR: add --mcu DIR")
            from edge_lstm.mcu.boards import board

            board(self.board)  # an unknown board: one line before any work
        if self.triton is not None and self.batch is not None:
            raise ConfigError("--triton writes the classifier and the step model with a batch axis; drop --batch")

    def flags(self) -> dict[str, bool]:
        return {
            "--int8": self.int8,
            "--fp16": self.fp16,
            "--ort": self.ort,
            "--mobile": self.mobile,
            "--tflite": self.tflite,
            "--triton": self.triton is not None,
            "--tflite-micro": self.tflite_micro,
            "--mcu": self.mcu is not None,
        }


@dataclass
class Artifact:
    variant: str  # fp32, int8, fp16, ort, mobile, mobile-int8, tflite, int8-tflite, triton
    path: str
    size_bytes: int = 0
    verified: bool = False
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # batch size -> max |logit diff|
    agreement: float | None = None  # share of test cases with PyTorch's predicted class
    accuracy: float | None = None  # test accuracy through the file's engine
    reference_accuracy: float | None = None  # the PyTorch model's test accuracy
    note: str | None = None  # what the file holds, where export chose (the int8 scheme of a sequence model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PartialExport(ExportError):
    """Some targets failed; the files of the others were written (`artifacts`)."""

    def __init__(self, message: str, artifacts: list[Artifact]) -> None:
        super().__init__(message)
        self.artifacts = artifacts


SEQUENCE_PREPROCESSING = (
    "none: raw feature values as in the training data (each feature's standardisation is folded into the "
    "input layer); sequences padded with anything after their `lengths`"
)


def export(config: ExportConfig) -> list[Artifact]:
    """Write the requested files; a target that fails leaves the others (PartialExport names both)."""
    config.validate()
    check_writable_dir(Path(config.output).parent, "OUTPUT")  # before seconds of export work, not after
    model, payload = load_model(config.checkpoint)
    arch = checkpoint_arch(payload, config.checkpoint)
    wanted = targets.requested(config.flags())
    refused = [f"{t.flag}: {why}" for t in wanted if (why := t.refuse(arch, config.streaming)) is not None]
    if refused:
        raise ConfigError(f"{refused[0]} ({arch.describe()} on {_data_name(arch)})")
    for target in wanted:
        target.ready()  # a missing extra: one line before any file is written
    if config.mcu is not None:
        check_writable_dir(Path(config.mcu), "--mcu")
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    opset = config.opset or 20
    spec = contract.spec("streaming-step" if config.streaming else "classifier", arch)
    base = (step_graph if config.streaming else classifier_graph)(state, arch, config.fuse, opset)
    if config.batch is not None:
        base = fix_batch(base, config.batch)
    check_contract(base, spec, batch=config.batch if config.batch is not None else contract.BATCH)
    metadata = _metadata(config, payload, arch, spec)
    set_metadata(base, {**metadata, contract.META_VARIANT: "fp32"})
    ref = reference(model, config.data_dir, _test_sequences(config, payload, arch)) if config.verify else None
    verdicts: dict[str, Verdict] = {}  # what a target's own check found, by its name (a folder's artifact)
    job = targets.Job(
        arch=arch,
        state=state,
        base=base,
        streaming=config.streaming,
        batch=config.batch,
        calibration=lambda: _calibration(config, payload, arch),
        output=Path(config.output),
        repository=config.triton,
        triton_backend=config.triton_backend,
        verify_step=lambda data: _verify(data, True, "triton step model", ref),
        mcu=config.mcu,
        board=config.board,
        check=functools.partial(_check, ref, verdicts),
        probe=lambda: _probe(config, arch, ref),
        step_metadata={
            **_metadata(config, payload, arch, contract.step_spec(arch)),
            contract.META_VARIANT: "fp32",
            contract.META_FUSED: "true",
        },
    )
    artifacts: list[Artifact] = []
    failures: list[str] = []
    for target in wanted:
        try:
            if target.repository:
                folders = target.build(job)
                artifacts += [_folder(target.name, f, config.verify, verdicts.get(target.name)) for f in folders]
                continue
            artifacts.append(_write(target, job, metadata, ref))
        except EdgeLstmError as e:
            if target.name == "fp32":
                raise  # every other target is built from it
            failures.append(f"{target.name}: {e}")
    if failures:
        written = ", ".join(f"{a.variant} ({a.path})" for a in artifacts)
        raise PartialExport(f"{'; '.join(failures)}; written and verified: {written}", artifacts)
    return artifacts


def _check(
    ref: Reference | None, verdicts: dict[str, Verdict], run: Engine, what: str, tolerance: str
) -> Verdict | None:
    """A target's own check against PyTorch (its verdict kept for its artifact); None without --verify."""
    if ref is None:
        return None
    verdicts[what] = compare(run, ref, contract.TOLERANCES[tolerance], what)
    return verdicts[what]


def _data_name(arch: Arch) -> str:
    return "MNIST" if arch.image else "own sequences"


def _metadata(config: ExportConfig, payload: dict[str, Any], arch: Arch, spec: contract.ModelSpec) -> dict[str, str]:
    return {
        contract.META_KIND: spec.kind,
        contract.META_VERSION: __version__,
        contract.META_LAYOUT: spec.layout,
        contract.META_PREPROCESSING: contract.PREPROCESSING if arch.image else SEQUENCE_PREPROCESSING,
        contract.META_LABELS: json.dumps(list(arch.classes)),
        contract.META_ACCURACY: str(payload.get("metrics", {}).get("test_accuracy", "unknown")),
        contract.META_TRAIN_CONFIG: json.dumps(payload.get("train_config", {}), sort_keys=True),
        contract.META_CHECKPOINT_SHA: sha256_file(Path(config.checkpoint)),
        contract.META_FUSED: str(config.fuse).lower(),
        contract.META_ARCH: arch.to_json(),
        **(
            {contract.META_NO_DIGIT: str(contract.NO_DIGIT_BELOW)}
            if arch.image and payload.get("train_config", {}).get("outliers", 0) > 0
            else {}
        ),
    }


def _write(target: targets.Target, job: targets.Job, metadata: dict[str, str], ref: Reference | None) -> Artifact:
    """Build, check, write beside its place, verify, and rename into place: one target's file."""
    built = target.build(job)
    if isinstance(built, onnx.ModelProto):
        set_metadata(built, {**metadata, contract.META_VARIANT: target.name})
        try:
            onnx.checker.check_model(built, full_check=True)
        except onnx.checker.ValidationError as e:
            raise ExportError(f"onnx.checker rejected the model: {str(e).splitlines()[0]}") from None
        data = built.SerializeToString()
    else:
        data = built
    dest = variant_path(job.output, target.name)
    with atomic_path(dest) as tmp:  # renamed into place when the block ends without an error
        tmp.write_bytes(data)
        art = Artifact(variant=target.name, path=str(dest), size_bytes=len(data), note=job.notes.get(target.name))
        if ref is not None:
            verdict = compare(
                targets.engine(target, data, job.streaming, job.arch), ref, _tolerance(target), target.name
            )
            art.max_abs_diff, art.agreement, art.accuracy = verdict.max_abs_diff, verdict.agreement, verdict.accuracy
            art.reference_accuracy, art.verified = ref.accuracy, True
    return art


def _tolerance(target: targets.Target) -> contract.Tolerance:
    return contract.TOLERANCES[target.tolerance]


def _verify(data: bytes, streaming: bool, what: str, ref: Reference | None) -> None:
    if ref is not None:
        compare(ort_logits(data, streaming, what), ref, contract.TOLERANCES["fp32"], what)


def _folder(variant: str, folder: Path, verified: bool, verdict: Verdict | None = None) -> Artifact:
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    art = Artifact(variant, str(folder), size, verified=verified)
    if verdict is not None:
        art.max_abs_diff, art.agreement, art.accuracy = verdict.max_abs_diff, verdict.agreement, verdict.accuracy
    return art


def _test_sequences(config: ExportConfig, payload: dict[str, Any], arch: Arch) -> SequenceSet | None:
    """The sequences a model of own data is verified on: --data, else the test file it was trained with."""
    if arch.image:
        return None
    path = config.data or recorded_test_data(payload)
    if path is None:
        raise ConfigError(
            "verifying this model needs its test sequences and the file it was trained with is not there: "
            "give them with --data FILE, or skip verification with --no-verify"
        )
    return sequences.for_model(Path(path), arch, Path(config.checkpoint))


def _calibration(config: ExportConfig, payload: dict[str, Any], arch: Arch) -> np.ndarray:
    """Model inputs from the training data, for the static int8 of the phone-NPU graph."""
    if arch.image:
        train = mnist.load_split(mnist.locate(config.data_dir), "train").images
        return train[:: len(train) // 512][:512].astype(np.float32) / 255
    recorded = payload.get("data", {}).get("train")
    if not recorded or not Path(recorded).is_file():
        raise ConfigError(
            f"the static int8 phone-NPU file is calibrated on the training sequences, and {recorded or 'their file'} "
            "is not there: export --mobile where the training data is"
        )
    return sequences.for_model(Path(recorded), arch, Path(config.checkpoint)).x


def _probe(config: ExportConfig, arch: Arch, ref: Reference | None) -> np.ndarray:
    """64 inputs the Triton step file is compared with the step model on: test cases, or random ones."""
    if ref is not None:
        return ref.x[:64].astype(np.float32)
    if arch.image:
        return mnist.load_split(mnist.locate(config.data_dir), "test").images[:64].astype(np.float32) / 255
    return np.random.default_rng(0).standard_normal((64, arch.steps or 16, arch.features)).astype(np.float32)
