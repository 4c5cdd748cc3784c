"""Export targets as a table: each entry says how its file is built, which engine verifies it, with
what tolerance, and which models it cannot be made for (and why). pipeline.py runs the requested
entries in this order; a new target is a new entry here.

The base file is `fp32` (the classifier) or `streaming` (the step model, `--streaming`); every other
entry is built from the same weights or from the base graph. `--batch N` fixes the base's batch axis,
so every entry built from the base has it too (mobile and TFLite always have a fixed batch: N or 1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_lstm.arch import Arch
from edge_lstm.export.graph import fix_batch
from edge_lstm.export.mobile import quantize_qdq, unrolled
from edge_lstm.export.variants import convert_fp16, first_passing_int8, ort_format, quantize_int8
from edge_lstm.export.verify import Engine, ort_logits


@dataclass
class Job:
    """What every target is built from: the model, its base graph, and the request."""

    arch: Arch
    state: dict[str, np.ndarray]  # the checkpoint's weights (numpy)
    base: onnx.ModelProto  # the verified base graph: classifier or step model, maybe of a fixed batch
    streaming: bool
    batch: int | None  # --batch
    calibration: Callable[[], np.ndarray]  # model inputs (K, steps, features) from the training data
    output: Path  # where the base file is written (the Triton repository takes it from there)
    repository: Path | None = None  # --triton
    triton_backend: str = "onnxruntime"
    # checks a step model's bytes against PyTorch (ExportError if it differs), for the Triton repository
    verify_step: Callable[[bytes], None] = lambda data: None
    probe: Callable[[], np.ndarray] = lambda: np.zeros((1, 1, 1), np.float32)  # inputs the Triton files are compared on
    step_metadata: dict[str, str] = field(default_factory=dict)  # the step model's, for the Triton repository
    cache: dict[str, Any] = field(default_factory=dict)  # what two entries share (onnx2tf's two files)
    mcu: Path | None = None  # --mcu: the C libraries' folder
    board: str | None = None  # --board: the flash and RAM the C libraries must fit
    # (engine, what, tolerance key) -> the verdict against PyTorch on the test set (None: --no-verify)
    check: Callable[[Callable[[np.ndarray, np.ndarray], np.ndarray], str, str], Any] = lambda run, what, tol: None
    notes: dict[str, str] = field(default_factory=dict)  # target -> what people should know of its file

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


@dataclass(frozen=True)
class Target:
    name: str  # the variant: its file's name (variants.variant_path) and its metadata
    flag: str  # the option that asks for it
    # an ONNX graph (metadata and checks follow) or a file's bytes; a repository target: the folders written
    build: Callable[[Job], Any]
    engine: str  # what verifies it: "onnxruntime", "litert", or for a repository what checks it
    tolerance: str  # key of contract.TOLERANCES
    refuse: Callable[[Arch, bool], str | None] = lambda arch, streaming: None  # why not, for this model
    repository: bool = False  # a folder of files (Triton's), not one file
    # raises ExportError when this installation cannot make it (a missing extra): checked before any file is written
    ready: Callable[[], None] = lambda: None


def _int8(job: Job) -> onnx.ModelProto:
    if job.arch.image:  # MNIST's int8 file is as before: everything, a scale per tensor
        return quantize_int8(job.base, per_channel=False)

    def check(proto: onnx.ModelProto) -> None:
        job.check(ort_logits(proto.SerializeToString(), job.streaming, "int8"), "int8", "int8")

    proto, job.notes["int8"] = first_passing_int8(job.base, bool(job.arch.conv), check)
    return proto


def _lstm_only(arch: Arch, streaming: bool) -> str | None:
    if arch.cell != "lstm":
        return (
            f"onnxruntime has no int8 {arch.op} kernel (its DynamicQuantizeLSTM is LSTM-only), so the "
            "recurrence would stay in fp32; export --fp16, or train --cell lstm"
        )
    return None


def _no_front_end(what: str, then: Callable[[Arch, bool], str | None]) -> Callable[[Arch, bool], str | None]:
    """Targets whose builders know the recurrent layers only (the unrolled graph, TFLite, C): a
    convolutional front-end, or inputs on a log scale, are refused in one line before anything is written."""

    def refuse(arch: Arch, streaming: bool) -> str | None:
        if arch.conv or arch.log_scale:
            model = "a convolutional front-end" if arch.conv else "inputs read on a log scale"
            return (
                f"{what} is not written for {model} yet; export the ONNX files (fp32, --int8, --fp16, --ort, "
                "--streaming, --triton)" + (", or train --arch lstm" if arch.conv else "")
            )
        return then(arch, streaming)

    return refuse


def _full_sequence(what: str) -> Callable[[Arch, bool], str | None]:
    def refuse(arch: Arch, streaming: bool) -> str | None:
        if streaming:
            return f"{what} is a full-sequence file; export it without --streaming"
        if arch.steps is None:
            return f"{what} needs a fixed number of steps, and this model takes sequences of any length"
        return None

    return refuse


def _mobile(job: Job) -> onnx.ModelProto:
    return job.once("mobile", lambda: unrolled(job.state, job.arch, job.batch or 1))


def _mobile_int8(job: Job) -> onnx.ModelProto:
    batch = job.batch or 1
    x = job.calibration()
    n = max(batch, 256 // batch * batch)  # about 256 cases, a whole number of batches
    picked = x[:: max(1, len(x) // n)][:n]  # spread over the training data
    if len(picked) < batch:
        picked = np.resize(picked, (batch, *picked.shape[1:]))
    return quantize_qdq(_mobile(job), picked[: len(picked) // batch * batch])


def _onnx2tf_installed() -> None:
    from edge_lstm.export.tflite import converter

    converter()


def _tflite(job: Job, which: str) -> bytes:
    from edge_lstm.export.tflite import convert

    def both() -> dict[str, bytes]:
        fixed = onnx.ModelProto()
        fixed.CopyFrom(job.base)
        return convert(fix_batch(fixed, job.batch or 1))

    files: dict[str, bytes] = job.once("tflite", both)
    return files[which]


def _triton(job: Job) -> list[Path]:
    """The Triton repository: the classifier just written and the step model of the same weights, built
    here and verified against PyTorch row by row before the repository is written."""
    import tempfile

    from edge_lstm.export.graph_build import step_graph
    from edge_lstm.export.triton import write_repository
    from edge_lstm.triton.config import TritonConfig

    assert job.repository is not None
    from edge_lstm.export.graph import set_metadata

    step = step_graph(job.state, job.arch, fuse=True)
    set_metadata(step, job.step_metadata)
    job.verify_step(step.SerializeToString())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step.onnx"
        onnx.save(step, str(path))
        config = TritonConfig(arch=job.arch, backend=job.triton_backend)
        folders: list[Path] = write_repository(job.repository, job.output, path, job.probe(), config)
    return folders


def _mcu(job: Job, variant: str) -> list[Path]:
    from edge_lstm.export.mcu import write_verified

    assert job.mcu is not None
    return [write_verified(job.output, job.mcu, variant, job.board, job.check, job.probe())]


def _tflite_micro(job: Job) -> list[Path]:
    from edge_lstm.export.tflite_micro import write_verified

    dest = job.output.parent / f"{job.output.stem}.tflm"
    return [write_verified(job.output, dest, job.calibration(), job.check)]


def _tflite_micro_ready() -> None:
    from edge_lstm.export.tflite_micro import installed

    installed()


def _fused_lstm(arch: Arch, streaming: bool) -> str | None:
    if (why := _full_sequence("TFLite Micro (--tflite-micro)")(arch, streaming)) is not None:
        return why
    if arch.cell != "lstm":
        return (
            f"TFLite Micro runs a recurrent layer only as its fused int8 LSTM; a {arch.op} becomes a loop it does "
            "not run: export --mcu (every cell), or train --cell lstm"
        )
    return None


def _classifier_and_step(arch: Arch, streaming: bool) -> str | None:
    return (
        "--triton writes the classifier and the step model with a batch axis; drop --streaming" if streaming else None
    )


MOBILE = "the phone-NPU graph (--mobile)"
TARGETS = (
    Target("fp32", "(the output file)", lambda job: job.base, "onnxruntime", "fp32"),
    Target(
        "int8",
        "--int8",
        _int8,
        "onnxruntime",
        "int8",
        _lstm_only,
    ),
    Target("fp16", "--fp16", lambda job: convert_fp16(job.base), "onnxruntime", "fp16"),
    Target("ort", "--ort", lambda job: ort_format(job.base.SerializeToString()), "onnxruntime", "fp32"),
    Target("mobile", "--mobile", _mobile, "onnxruntime", "fp32", _no_front_end(MOBILE, _full_sequence(MOBILE))),
    Target(
        "mobile-int8",
        "--mobile",
        _mobile_int8,
        "onnxruntime",
        "mobile-int8",
        _no_front_end(MOBILE, _full_sequence(MOBILE)),
    ),
    Target(
        "tflite",
        "--tflite",
        functools.partial(_tflite, which="tflite"),
        "litert",
        "tflite",
        _no_front_end("TFLite (--tflite)", _full_sequence("TFLite (--tflite)")),
        ready=_onnx2tf_installed,
    ),
    Target(
        "int8-tflite",
        "--tflite",
        functools.partial(_tflite, which="int8-tflite"),
        "litert",
        "int8-tflite",
        _no_front_end("TFLite (--tflite)", _full_sequence("TFLite (--tflite)")),
        ready=_onnx2tf_installed,
    ),
    Target(
        "triton",
        "--triton",
        _triton,
        "Triton's model-configuration schema; the step model against PyTorch row by row",
        "fp32",
        _classifier_and_step,
        repository=True,
    ),
    Target(
        "tflite-micro",
        "--tflite-micro",
        _tflite_micro,
        "the tflite-micro wheel (TFLM's C++ kernels), against PyTorch",
        "tflite-micro",
        _no_front_end("TFLite Micro (--tflite-micro)", _fused_lstm),
        repository=True,
        ready=_tflite_micro_ready,
    ),
    Target(
        "mcu-fp32",
        "--mcu",
        functools.partial(_mcu, variant="fp32"),
        "the C library built here, against PyTorch; its step API against its classify",
        "mcu-fp32",
        _no_front_end("the C library (--mcu)", lambda arch, streaming: None),
        repository=True,
    ),
    Target(
        "mcu-int8",
        "--mcu",
        functools.partial(_mcu, variant="int8"),
        "the C library built here, against PyTorch; its step API against its classify",
        "mcu-int8",
        _no_front_end("the C library (--mcu)", lambda arch, streaming: None),
        repository=True,
    ),
)


def requested(flags: dict[str, bool]) -> list[Target]:
    """The entries the options ask for, in table order (fp32, the base, always)."""
    return [t for t in TARGETS if t.name == "fp32" or flags.get(t.flag, False)]


def engine(target: Target, data: bytes, streaming: bool, arch: Arch) -> Engine:
    """The runner that verifies a target's file: (inputs, lengths) -> logits."""
    if target.engine == "litert":
        from edge_lstm.litert import litert_logits

        run = litert_logits(data, arch=arch)
        return lambda x, lengths: run(x)
    return ort_logits(data, streaming, target.name)


def table() -> list[dict[str, str]]:
    """The table for people (docs/edge-targets.md, `export --help`)."""
    return [{"target": t.name, "option": t.flag, "verified by": t.engine, "tolerance": t.tolerance} for t in TARGETS]
