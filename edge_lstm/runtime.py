"""The onnxruntime runner that users embed: `Classifier` (whole images) and `StreamingClassifier`
(one row at a time). Needs onnxruntime and numpy only, never torch.

Both validate their input (dtype, shape, range), run on an explicit provider, and refuse a
silent fallback: a GPU session whose LSTM landed on the CPU is an error unless allowed.
`eval`, `predict` and `bench` all use these classes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract, providers
from edge_lstm.environment import usable_cores
from edge_lstm.errors import InputError, ModelFileError, ProviderError
from edge_lstm.fileio import not_a_file


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


_LEVELS = ("disable", "basic", "extended", "all")
# Auto mode runs large batches as chunks of CHUNK images: a 64-row LSTM state stays in cache
# across the 28 steps, which made 1024-image batches 1.3x (fp32) to 1.6x (int8) faster even on one
# thread (bench/results/levers.json); the chunks are spread over one worker per core.
CHUNK = 64


def _model_bytes(model: Path | str | bytes) -> tuple[bytes, str]:
    if isinstance(model, bytes):
        return model, "<bytes>"
    path = Path(model)
    if (why := not_a_file(path)) is not None:
        raise ModelFileError(f"model file {path} {why} (export one with `edge-lstm export`)")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(f"{path}: empty file")
    return data, str(path)


def open_session(model: Path | str | bytes, config: SessionConfig = SessionConfig()) -> tuple[Any, str, bytes]:
    """An onnxruntime InferenceSession on exactly the asked provider, the model's name and bytes."""
    import onnxruntime as ort

    spec = providers.require(config.provider)
    data, name = _model_bytes(model)
    if config.threads is not None and config.threads < 1:
        raise ProviderError(f"threads must be >= 1, got {config.threads}")
    if config.optimization not in _LEVELS:
        raise ProviderError(f"optimization must be one of {', '.join(_LEVELS)}")
    so = ort.SessionOptions()
    so.log_severity_level = 3  # errors only: warnings about unused initializers etc. are noise here
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel,
        {
            "disable": "ORT_DISABLE_ALL",
            "basic": "ORT_ENABLE_BASIC",
            "extended": "ORT_ENABLE_EXTENDED",
            "all": "ORT_ENABLE_ALL",
        }[config.optimization],
    )
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # a chain of ops: nothing to run in parallel
    if config.threads is not None:
        so.intra_op_num_threads = config.threads
    elif spec.name == "cpu":
        so.intra_op_num_threads = 1  # auto mode: parallelism comes from splitting the batch
    if config.spinning is not None:
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.spinning else "0")
    check = config.check_placement if config.check_placement is not None else spec.name != "cpu"
    profile_dir = None
    if check:
        # Node placement is read from onnxruntime's own profile of one run (_placement_from_profile).
        profile_dir = tempfile.mkdtemp(prefix="edge-lstm-profile-")
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(profile_dir, "placement")
    ep_list: list[Any] = [spec.ep]
    if spec.ep != "CPUExecutionProvider":
        inputs = _declared_inputs(data)
        options = {**providers.default_options(spec.name, inputs), **config.provider_options}
        ep_list = [(spec.ep, {k: str(v) for k, v in options.items()}), "CPUExecutionProvider"]
    elif config.provider_options:
        ep_list = [(spec.ep, {k: str(v) for k, v in config.provider_options.items()})]
    try:
        session = ort.InferenceSession(data, so, providers=ep_list)
    except Exception as e:  # onnxruntime raises its own pybind types: Fail, InvalidProtobuf, InvalidGraph...
        if profile_dir is not None:
            shutil.rmtree(profile_dir, ignore_errors=True)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if spec.ep != "CPUExecutionProvider" and "provider" in first.lower():
            raise ProviderError(f"{spec.name}: could not create the session: {first[:240]}") from None
        raise ModelFileError(f"{name}: not a loadable ONNX/ORT model ({first[:240]})") from None
    if session.get_providers()[0] != spec.ep:
        raise ProviderError(
            f"{spec.name}: onnxruntime fell back to {session.get_providers()[0]} "
            "(the provider could not load its libraries); check the install or use --provider cpu"
        )
    return session, name, data


def _declared_inputs(data: bytes) -> dict[str, list[int | str]]:
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
        return {contract.INPUT: [contract.BATCH, contract.N_STEPS, contract.N_INPUTS]}


def _placement_from_profile(session: Any) -> dict[str, dict[str, int]]:
    """provider -> {op_type: count}, from onnxruntime's profile of the run just made."""
    path = session.end_profiling()  # also stops profiling: later runs are not slowed
    try:
        events = json.loads(Path(path).read_text())
    finally:
        Path(path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            Path(path).parent.rmdir()
    seen: dict[str, dict[str, int]] = {}
    nodes: set[str] = set()
    for ev in events:
        args = ev.get("args", {})
        if ev.get("cat") == "Node" and "provider" in args and "op_name" in args:
            node = ev["name"].rsplit("_kernel_time", 1)[0]
            if node.endswith(("_fence_before", "_fence_after")) or node in nodes:
                continue
            nodes.add(node)
            ops = seen.setdefault(providers.short_name(args["provider"]), Counter())
            ops[args["op_name"]] += 1
    return {p: dict(c) for p, c in seen.items()}


def check_placement(placement: dict[str, dict[str, int]], wanted: str, allow_fallback: bool) -> None:
    lstm_ops = {"LSTM", "DynamicQuantizeLSTM"}
    where = [p for p, ops in placement.items() if lstm_ops & set(ops)]
    if wanted not in where and not allow_fallback:
        raise ProviderError(
            f"the LSTM node ran on {', '.join(where) or 'no provider'}, not on {wanted} "
            "(this variant is not supported there; use another model variant or --allow-fallback)"
        )


def to_input(images: np.ndarray, rank: int = 3) -> np.ndarray:
    """Validate and convert images to float32 in [0, 1], shape (B, 28, 28) (rank 3) or rows (B, 28) (rank 2).

    Accepts uint8 0..255 or float32 0..1; a single image/row without the batch axis is promoted.
    """
    if not isinstance(images, np.ndarray):
        raise InputError(f"expected a numpy array, got {type(images).__name__}")
    tail = (contract.N_STEPS, contract.N_INPUTS) if rank == 3 else (contract.N_INPUTS,)
    what = "images of shape (28, 28) or (B, 28, 28)" if rank == 3 else "rows of shape (28,) or (B, 28)"
    if images.ndim == rank - 1 and images.shape == tail:
        images = images[None]
    if images.ndim != rank or images.shape[1:] != tail:
        hint = "; reshape flat images with x.reshape(-1, 28, 28)" if rank == 3 and images.shape[-1:] == (784,) else ""
        raise InputError(f"expected {what}, got shape {images.shape}{hint}")
    if images.shape[0] == 0:
        raise InputError("empty batch: expected at least one image")
    if images.dtype == np.uint8:
        return images.astype(np.float32) * np.float32(1 / 255)
    if images.dtype != np.float32:
        raise InputError(
            f"expected uint8 (0..255) or float32 (0..1) pixels, got {images.dtype}; convert with .astype(np.float32)"
        )
    lo, hi = images.min(), images.max()
    if not (lo >= 0.0 and hi <= 1.0):  # NaN fails both comparisons
        bad = "NaN values" if np.isnan(images).any() else f"values in [{lo:g}, {hi:g}]"
        raise InputError(f"float32 pixels must lie in [0, 1] (pixel / 255), got {bad}")
    return np.ascontiguousarray(images)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """An exported full-sequence model in onnxruntime. Safe to call from several threads at once
    (onnxruntime's Run is thread-safe, and each call here has its own inputs and bindings)."""

    def __init__(self, model: Path | str | bytes, config: SessionConfig | None = None, **kwargs: Any) -> None:
        self.config = config or SessionConfig(**kwargs)
        self.session, self.name, self._data = open_session(model, self.config)
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [contract.INPUT]:
            raise ModelFileError(
                f"{self.name}: not an edge-lstm classifier (inputs {inputs}, expected ['images']); "
                "a streaming step model goes to StreamingClassifier / --streaming"
            )
        self.provider = providers.spec(self.config.provider).name
        self._outputs = [contract.OUTPUT]
        # Auto threading on the CPU: batches of more than CHUNK images run as chunks spread over one
        # worker per core, each on the shared session's 1 intra-op thread (session.run releases the GIL).
        self.auto = self.config.threads is None and self.provider == "cpu"
        self.workers = usable_cores() if self.auto else 1
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.placement: dict[str, dict[str, int]] | None = None
        if self.session.get_session_options().enable_profiling:
            self.session.run(self._outputs, {contract.INPUT: np.zeros((1, 28, 28), np.float32)})
            self.placement = _placement_from_profile(self.session)
            check_placement(self.placement, self.provider, self.config.allow_fallback)

    def node_placement(self) -> dict[str, dict[str, int]]:
        """provider -> {op_type: count} for this model and provider (runs it once, profiled)."""
        if self.placement is None:
            probe_config = dataclasses.replace(self.config, check_placement=True, allow_fallback=True)
            self.placement = Classifier(self._data, probe_config).placement
        return self.placement or {}

    def threading(self) -> str:
        """What the runner picked, for people."""
        if self.auto:
            return f"auto: 1 intra-op thread; batches > {CHUNK} run as {CHUNK}-image chunks on {self.workers} worker(s)"
        threads = self.config.threads or (1 if self.provider == "cpu" else "default")
        return f"{threads} intra-op thread(s)"

    def logits(self, images: np.ndarray) -> np.ndarray:
        """(B, 10) float32 logits for (B, 28, 28) images (uint8 0..255 or float32 0..1)."""
        x = to_input(images)
        if self.auto and len(x) > CHUNK:
            chunks = [x[i : i + CHUNK] for i in range(0, len(x), CHUNK)]
            if self.workers == 1:
                return np.concatenate([self._run(c) for c in chunks])
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edge-lstm")
            return np.concatenate(list(self._pool.map(self._run, chunks)))
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self._outputs, {contract.INPUT: x})[0]

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (B,) int64, probabilities (B, 10) float32)."""
        probs = softmax(self.logits(images))
        return probs.argmax(axis=1), probs

    def predict_labels(self, images: np.ndarray, batch: int = 2000) -> np.ndarray:
        return np.concatenate([self.logits(images[i : i + batch]).argmax(1) for i in range(0, len(images), batch)])

    # --- GPU: keep data on the device so a batching caller pays one copy each way
    def to_device(self, images: np.ndarray) -> Any:
        """Copy validated images to the provider's device once (an OrtValue)."""
        import onnxruntime as ort

        device, device_id = _device_of(self.provider, self.config.provider_options)
        return ort.OrtValue.ortvalue_from_numpy(to_input(images), device, device_id)

    def run_on_device(self, images: Any) -> Any:
        """Run on an OrtValue from to_device(); the logits stay on the device (`.numpy()` copies back)."""
        device, device_id = _device_of(self.provider, self.config.provider_options)
        binding = self.session.io_binding()  # one per call: bindings are not thread-safe, sessions are
        binding.bind_ortvalue_input(contract.INPUT, images)
        binding.bind_output(contract.OUTPUT, device, device_id)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0]


def _device_of(provider: str, options: dict[str, Any]) -> tuple[str, int]:
    if provider in ("cuda", "tensorrt"):
        return "cuda", int(options.get("device_id", 0))
    return "cpu", 0


class StreamingClassifier:
    """The one-step model with its state: push rows as they arrive, read the logits so far.

    Holds `batch` independent streams (h, c of shape (1, batch, 128)); `reset()` starts over.
    """

    def __init__(
        self, model: Path | str | bytes, batch: int = 1, config: SessionConfig | None = None, **kwargs: Any
    ) -> None:
        self.config = config or SessionConfig(**kwargs)
        self.session, self.name, _ = open_session(model, self.config)
        inputs = [i.name for i in self.session.get_inputs()]
        if tuple(inputs) != contract.STEP_INPUTS:
            raise ModelFileError(
                f"{self.name}: not an edge-lstm streaming model (inputs {inputs}, expected row, h, c); "
                "export one with `edge-lstm export --streaming`"
            )
        self.placement = None
        if self.session.get_session_options().enable_profiling:
            zeros = np.zeros((1, 1, contract.N_HIDDEN), np.float32)
            self.session.run(None, {"row": np.zeros((1, 28), np.float32), "h": zeros, "c": zeros})
            self.placement = _placement_from_profile(self.session)
            check_placement(self.placement, providers.spec(self.config.provider).name, self.config.allow_fallback)
        self.reset(batch)

    def reset(self, batch: int | None = None) -> None:
        """Forget everything seen; optionally change the number of streams."""
        if batch is not None:
            if batch < 1:
                raise InputError(f"batch must be >= 1, got {batch}")
            self.batch = batch
        self.h = np.zeros((1, self.batch, contract.N_HIDDEN), np.float32)
        self.c = np.zeros_like(self.h)
        self.steps = 0
        self.last_logits: np.ndarray | None = None

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Feed one row per stream ((batch, 28) or (28,) for one stream); return logits (batch, 10) so far."""
        x = to_input(rows, rank=2)
        if x.shape[0] != self.batch:
            raise InputError(
                f"expected {self.batch} rows (one per stream), got {x.shape[0]}; reset(batch=...) to change"
            )
        if self.steps >= contract.N_STEPS:
            raise InputError(f"all {contract.N_STEPS} rows were pushed already; call reset() for the next image")
        logits, self.h, self.c = self.session.run(None, {"row": x, "h": self.h, "c": self.c})
        self.steps += 1
        self.last_logits = logits
        return logits

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Anytime prediction from the rows seen so far: (labels, probabilities)."""
        if self.last_logits is None:
            raise InputError("no rows pushed yet")
        probs = softmax(self.last_logits)
        return probs.argmax(axis=1), probs
