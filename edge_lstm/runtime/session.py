"""Opening a model file in onnxruntime: exactly the asked provider, the contract checked, no silent
fallback (a GPU session whose LSTM landed on the CPU is an error unless allowed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_lstm import contract
from edge_lstm.errors import ConfigError, ModelFileError, ProviderError
from edge_lstm.fileio import not_a_file
from edge_lstm.nativelog import native_output_silenced
from edge_lstm.runtime import plugins, providers
from edge_lstm.runtime.placement import check_placement, discard_profile, placement_from_profile


@dataclass(frozen=True)
class SessionConfig:
    provider: str = "cpu"
    provider_options: dict[str, Any] = field(default_factory=dict)  # merged over the registry defaults
    # Intra-op threads. None = auto: 1 intra-op thread (batch 1 gains nothing from a thread
    # hand-off, bench/results/perf.json) and large CPU batches split over one worker per core.
    threads: int | None = None
    spinning: bool | None = None  # intra-op thread spinning; None: onnxruntime's default (on)
    allow_fallback: bool = False  # accept nodes (the LSTM) placed on another provider than asked
    check_placement: bool | None = None  # None: check for every provider except cpu
    optimization: str = "all"  # onnxruntime graph optimisation level: disable, basic, extended, all
    # CUDA graphs (one captured graph per input shape, replayed): None = on where safe (cuda, every
    # node on the GPU); True = required; False = off.
    cuda_graph: bool | None = None
    verbose: bool = False  # let onnxruntime's own warnings through (--verbose); otherwise errors only


LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


@dataclass
class OpenedModel:
    session: Any  # onnxruntime.InferenceSession
    name: str  # the file's path, or "<bytes>"
    data: bytes
    spec: contract.ModelSpec
    metadata: dict[str, str]
    provider: str  # the short provider name that runs it
    placement: dict[str, dict[str, int]] | None = None  # provider -> {op_type: count}, when checked

    @property
    def fixed_batch(self) -> int | None:
        """The batch size a fixed-batch file (`export --batch N`, `--mobile`) takes; None: any."""
        declared = self.session.get_inputs()[0].shape[0]
        return declared if isinstance(declared, int) else None


def read_model_bytes(model: Path | str | bytes) -> tuple[bytes, str]:
    if isinstance(model, bytes):
        return model, "<bytes>"
    path = Path(model)
    if (why := not_a_file(path)) is not None:
        raise ModelFileError(f"model file {path} {why} (export one with `edge-lstm export`)")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty file")
    if data[:4] == b"PK\x03\x04":  # a zip archive, which is what torch.save writes; ONNX/ORT never are
        raise ModelFileError(
            f"{path}: a PyTorch checkpoint (or another zip archive), not a model file: export it with "
            f"`edge-lstm export --checkpoint {path}` and use export/model.onnx "
            f"(`edge-lstm eval {path}` scores it as it is)"
        )
    return data, str(path)


def session_options(config: SessionConfig, cpu: bool) -> Any:
    import onnxruntime as ort

    if config.threads is not None and config.threads < 1:
        raise ProviderError(f"threads must be >= 1, got {config.threads}")
    if config.optimization not in LEVELS:
        raise ProviderError(f"optimization must be one of {', '.join(LEVELS)}")
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: warnings about unused initializers etc. are noise here
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[config.optimization])
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a chain of ops: nothing to run in parallel
    if config.threads is not None:
        so.intra_op_num_threads = config.threads
    elif cpu:
        so.intra_op_num_threads = 1  # auto mode: parallelism comes from splitting the batch
    if config.spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.spinning else "0")
    return so


def _loads_on_cpu(data: bytes) -> bool:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's pybind error types
        return False
    return True


def create_session(
    data: bytes,
    name: str,
    config: SessionConfig,
    extra_options: dict[str, str] | None = None,
    profile: bool = False,
    spec: providers.ProviderSpec | None = None,
) -> Any:
    """An onnxruntime session on exactly config.provider (then CPU for the nodes it cannot take).
    `spec`: the provider, when the caller has already required it."""
    import onnxruntime as ort

    spec = spec or providers.require(config.provider)
    so = session_options(config, cpu=spec.name == "cpu")
    ep_list: list[Any] = [spec.ep]
    options: dict[str, Any] = {}
    if spec.ep != "CPUExecutionProvider":
        options = {**providers.default_options(spec.name, declared_input_dims(data)), **config.provider_options}
        options.update(extra_options or {})
        ep_list = [(spec.ep, {k: str(v) for k, v in options.items()}), "CPUExecutionProvider"]
    elif config.provider_options:
        ep_list = [(spec.ep, {k: str(v) for k, v in config.provider_options.items()})]
    devices = plugins.devices_for(spec.name, spec.ep, options) if spec.name in plugins.PLUGINS else None
    if devices is not None:  # a plugin EP: the session takes its devices, not a provider list
        so.add_provider_for_devices(devices, {k: str(v) for k, v in options.items()})
        ep_list = []
    profile_dir = None
    if profile:  # made last, so that every failure from here on can remove it
        # Node placement is read from onnxruntime's own profile of one run (placement_from_profile).
        profile_dir = tempfile.mkdtemp(prefix="edge-lstm-profile-")
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "placement")
    try:
        quiet_fd1 = devices is not None and not config.verbose  # plugin libraries print to descriptor 1
        with (
            providers.quiet_native_logs(config.verbose) as said,
            native_output_silenced(1) if quiet_fd1 else contextlib.nullcontext(),
        ):
            session = ort.InferenceSession(data, so, providers=ep_list or None)
    except Exception as e:  # onnxruntime raises its own pybind types: Fail, InvalidProtobuf, InvalidGraph...
        if profile_dir is not None:
            shutil.rmtree(profile_dir, ignore_errors=True)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # Whose failure it is, decided by trying the file on the CPU rather than by the wording of the
        # message (QNN's "EP_FAIL : Failed to finalize QNN graph" names no provider, say).
        if spec.ep != "CPUExecutionProvider" and _loads_on_cpu(data):
            raise ProviderError(f"{spec.name}: could not create the session: {first[:240]}") from None
        raise ModelFileError(f"{name}: not a loadable ONNX/ORT model ({first[:240]})") from None
    ran = session.get_providers()[0]
    if ran != spec.ep:  # onnxruntime's silent fallback; what it printed about it says why
        if profile_dir is not None:
            shutil.rmtree(profile_dir, ignore_errors=True)
        why = next((ln.strip() for ln in said.getvalue().splitlines() if "EP Error" in ln), "")
        raise ProviderError(
            f"{spec.name}: onnxruntime fell back to {providers.short_name(ran)} "
            f"({why[:160] or 'the provider could not load its libraries'}); check the install or use --provider cpu"
        )
    return session


def peek(model: Path | str) -> tuple[list[str], dict[str, str]] | None:
    """A file's input names and metadata from a quiet CPU session, before the checked open (serve
    picks each file's runner by them, bench its inputs); None if onnxruntime cannot load it (the
    checked open then says why, in one line)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        session = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        return [i.name for i in session.get_inputs()], dict(session.get_modelmeta().custom_metadata_map)
    except Exception:  # onnxruntime's pybind errors, metadata that is not text
        return None


def declared_in_session(session: Any) -> tuple[list[contract.Declared], list[contract.Declared]]:
    def one(v: Any) -> contract.Declared:
        dims = tuple(d if isinstance(d, int | str) else None for d in v.shape) if v.shape is not None else None
        return contract.Declared(v.name, _ORT_DTYPES.get(v.type, v.type), dims)

    return [one(v) for v in session.get_inputs()], [one(v) for v in session.get_outputs()]


def check_contract(
    session: Any, name: str, want: contract.ModelSpec | None = None
) -> tuple[contract.ModelSpec, dict[str, str]]:
    """The contract this session's file fulfils (or `want`), with its metadata; ModelFileError saying
    in one line what differs otherwise."""
    inputs, outputs = declared_in_session(session)
    try:
        metadata = dict(session.get_modelmeta().custom_metadata_map)
    except UnicodeDecodeError:  # found by tests/test_fuzz.py: a corrupted byte in the metadata
        raise ModelFileError(f"{name}: its metadata is not valid text (a corrupted file)") from None
    try:
        arch = contract.arch_from_metadata(metadata)
    except ConfigError as e:
        raise ModelFileError(
            f"{name}: its {contract.META_ARCH} metadata is unreadable ({e}): a corrupted file"
        ) from None
    detected = contract.kind_for([d.name for d in inputs])
    spec = contract.spec(want.kind if want else detected or contract.CLASSIFIER.kind, arch)
    problems = spec.mismatches(inputs, outputs)
    kind = metadata.get(contract.META_KIND)
    if kind != spec.kind:
        problems.append(
            f"its metadata says {contract.META_KIND}={kind!r}, expected {spec.kind!r}"
            if kind
            else f"no {contract.META_KIND} metadata (not written by `edge-lstm export`)"
        )
    if problems:
        label = "streaming" if spec.kind == contract.STEP.kind else "classifier"
        if want is not None and detected is not None and detected != want.kind:
            what = (
                "it is a streaming step model (inputs row and the state), run row by row (StreamingClassifier, "
                "`eval --streaming`, `serve`); give the classifier, export/model.onnx"
                if detected == contract.STEP.kind
                else "it is a classifier; export a step model with `edge-lstm export --streaming`"
            )
            raise ModelFileError(f"{name}: not an edge-lstm {label} model: {what}")
        raise ModelFileError(f"{name}: not an edge-lstm {label} model: " + "; ".join(problems))
    return spec, metadata


def open_model(model: Path | str | bytes, config: SessionConfig, want: contract.ModelSpec | None = None) -> OpenedModel:
    """Read, open and check a model file; with placement checking, run it once profiled."""
    data, name = read_model_bytes(model)
    spec_p = providers.require(config.provider)
    check = config.check_placement if config.check_placement is not None else spec_p.name != "cpu"
    session = create_session(data, name, config, profile=check, spec=spec_p)
    try:
        spec, metadata = check_contract(session, name, want)
        if check:
            session.run(None, zero_feeds(spec, batch=1))
    except Exception:
        if check:  # the profile is never read: its file and folder go
            discard_profile(session)
        raise
    opened = OpenedModel(session, name, data, spec, metadata, spec_p.name)
    if check:
        opened.placement = placement_from_profile(session)
        check_placement(opened.placement, spec_p.name, config.allow_fallback)
    return opened


def zero_feeds(spec: contract.ModelSpec, batch: int) -> dict[str, Any]:
    """Inputs of zeros at this batch size (sequences of any length: one step, lengths 1)."""
    import numpy as np

    return {
        t.name: np.ones(spec.shape(t.name, batch), np.int32)
        if t.dtype == "int32"
        else np.zeros(spec.shape(t.name, batch), np.float32)
        for t in spec.inputs
    }


def declared_input_dims(data: bytes) -> dict[str, list[int | str]]:
    """Input names and dims from the file, for provider options such as TensorRT profiles."""
    try:
        import onnx

        proto = onnx.load_from_string(data)
        return {
            i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in proto.graph.input
            if i.name not in {t.name for t in proto.graph.initializer}
        }
    except Exception:  # an ORT-format file is not a protobuf: fall back to the contract
        return {t.name: list(t.dims) for t in contract.CLASSIFIER.inputs}
