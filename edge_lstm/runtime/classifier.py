"""`Classifier`: an exported full-sequence model in onnxruntime, the runner users embed.

Needs onnxruntime and numpy only, never torch. Validates its input (dtype, shape, range), runs on an
explicit provider, checks the file against the contract, and refuses a silent fallback.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.batching import in_fixed_batches
from edge_lstm.environment import usable_cores
from edge_lstm.errors import InputError
from edge_lstm.runtime import providers
from edge_lstm.runtime.device import graph_runner
from edge_lstm.runtime.inputs import softmax, to_input, to_lengths
from edge_lstm.runtime.session import SessionConfig, open_model

# Auto mode runs large batches as chunks of CHUNK images: a 64-row LSTM state stays in cache
# across the 28 steps, which made 1024-image batches 1.3x (fp32) to 1.6x (int8) faster even on one
# thread (bench/results/levers.json); the chunks are spread over one worker per core.
_CHUNK = 64


def auto_threads(batch: int) -> int:
    """Threads the CPU auto mode uses for a batch: 1 up to one chunk, one worker per core above it.
    bench gives PyTorch the same parallelism, so comparisons are like for like."""
    return usable_cores() if batch > _CHUNK else 1


class Classifier:
    """Safe to call from several threads at once (onnxruntime's Run is thread-safe, and each call
    here has its own inputs and bindings; CUDA-graph buffers are locked per shape)."""

    def __init__(self, model: Path | str | bytes, config: SessionConfig | None = None, **kwargs: Any) -> None:
        self.config = config or SessionConfig(**kwargs)
        opened = open_model(model, self.config, want=contract.CLASSIFIER)
        self.spec, self.arch = opened.spec, opened.spec.arch  # from the file: MNIST's or its own data's
        self.input_name = self.spec.input_names[0]
        self.takes_lengths = "lengths" in self.spec.input_names
        self.session, self.name, self._data = opened.session, opened.name, opened.data
        self.metadata, self.placement, self.provider = opened.metadata, opened.placement, opened.provider
        self.no_digit_below = contract.no_digit_below(self.metadata)  # None: no such decision in this file
        self._outputs = [contract.OUTPUT]
        # Auto threading on the CPU: batches of more than _CHUNK images run as chunks spread over one
        # worker per core, each on the shared session's 1 intra-op thread (session.run releases the GIL).
        self.auto = self.config.threads is None and self.provider == "cpu"
        self.workers = usable_cores() if self.auto else 1
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self.device = providers.spec(self.provider).memory
        self.device_id = int(self.config.provider_options.get("device_id", 0))
        self.fixed_batch = opened.fixed_batch  # a fixed-batch file takes exactly N images per run
        self.graph_runner, self.cuda_graph, self.cuda_graph_reason = graph_runner(opened, self.config)
        if self.takes_lengths:  # sequences of any length: no fixed shapes to bind or capture
            self.graph_runner, self.cuda_graph = None, False

    def node_placement(self) -> dict[str, dict[str, int]]:
        """provider -> {op_type: count} for this model and provider (runs it once, profiled)."""
        if self.placement is None:
            probe = dataclasses.replace(self.config, check_placement=True, allow_fallback=True, cuda_graph=False)
            self.placement = Classifier(self._data, probe).placement
        return self.placement or {}

    def threads_for(self, batch: int) -> int:
        """The CPU threads a request of this batch size uses (what bench reports and matches)."""
        if self.auto:
            return min(self.workers, auto_threads(batch))
        return self.config.threads or 1

    def threading(self, batch: int | None = None) -> str:
        """What the runner picked for a batch size, for people."""
        if self.auto:
            if batch is not None and batch <= _CHUNK:
                return "auto: 1 intra-op thread"
            return (
                f"auto: 1 intra-op thread; batches > {_CHUNK} run as {_CHUNK}-image chunks on {self.workers} worker(s)"
            )
        if self.provider in providers.OWN_THREAD_POOL:
            return f"{self.provider}'s own thread pool (onnxruntime's intra-op threads do not apply)"
        threads = self.config.threads or (1 if self.provider == "cpu" else "default")
        return f"{threads} intra-op thread(s)"

    def logits(self, images: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """(B, 10) float32 logits for (B, 28, 28) images (uint8 0..255 or float32 0..1); for a model of
        own sequences, (B, classes) for (B, T, F) sequences, with their lengths if padded."""
        x = to_input(images, arch=self.arch)
        if self.takes_lengths:
            return self._run_padded(x, to_lengths(lengths, x))
        if lengths is not None and not (np.asarray(lengths) == x.shape[1]).all():
            raise InputError(f"{self.name} takes sequences of exactly {x.shape[1]} steps: no padding, no lengths")
        if self.fixed_batch is not None and len(x) != self.fixed_batch:
            return in_fixed_batches(self.logits, x, self.fixed_batch)
        if self.graph_runner is not None:
            return self.graph_runner.run({self.input_name: x})[0]
        if self.auto and len(x) > _CHUNK and self.fixed_batch is None:
            chunks = [x[i : i + _CHUNK] for i in range(0, len(x), _CHUNK)]
            if self.workers == 1:
                return np.concatenate([self._run(c) for c in chunks])
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edge-lstm")
            return np.concatenate(list(self._pool.map(self._run, chunks)))
        return self._run(x)

    def _run(self, x: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.session.run(self._outputs, {self.input_name: x})[0]
        return out

    def _run_padded(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """A model of any length: one call with the lengths (CUDA graphs and chunking are for fixed shapes)."""
        out: np.ndarray = self.session.run(self._outputs, {self.input_name: x, "lengths": lengths})[0]
        return out

    def predict(self, images: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels (B,) int64, probabilities (B, classes) float32)."""
        probs = softmax(self.logits(images, lengths))
        return probs.argmax(axis=1), probs

    def predict_labels(self, images: np.ndarray, batch: int = 2000, lengths: np.ndarray | None = None) -> np.ndarray:
        def part(i: int) -> np.ndarray:
            return self.logits(images[i : i + batch], None if lengths is None else lengths[i : i + batch])

        return np.concatenate([part(i).argmax(1) for i in range(0, len(images), batch)])

    # --- GPU: keep data on the device so a batching caller pays one copy each way
    def to_device(self, images: np.ndarray) -> Any:
        """Copy validated images to the provider's device once (an OrtValue)."""
        import onnxruntime as ort

        return ort.OrtValue.ortvalue_from_numpy(to_input(images, arch=self.arch), self.device, self.device_id)

    def run_on_device(self, images: Any) -> Any:
        """Run on an OrtValue from to_device(); the logits stay on the device (`.numpy()` copies them back)."""
        binding = self.session.io_binding()  # one per call: bindings are not thread-safe, sessions are
        binding.bind_ortvalue_input(self.input_name, images)
        binding.bind_output(contract.OUTPUT, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
