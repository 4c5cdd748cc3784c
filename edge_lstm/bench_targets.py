"""What `edge-lstm bench` times: one class per kind of target, each doing one request per run().

Each target times its own creation (session_ms) and first call (first_inference_ms) and describes
itself in `info` (model, provider, scenario, batch, threads, ...), which becomes its result row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from edge_lstm import contract
from edge_lstm.fileio import sha256_file
from edge_lstm.runtime import CHUNK, Classifier, SessionConfig, StreamingClassifier

if TYPE_CHECKING:
    from edge_lstm.bench import BenchConfig


class Target(Protocol):
    """One thing to time: `run()` does one request (a batch, or one streaming row)."""

    label: str
    info: dict[str, Any]

    def run(self) -> None: ...


class OrtTarget:
    """threads=None: the runner's auto threading (1 intra-op thread, large batches split per core)."""

    def __init__(
        self,
        model: Path,
        provider: str,
        scenario: str,
        batch: int,
        threads: int | None,
        cfg: BenchConfig,
        images: np.ndarray,
    ) -> None:
        t0 = time.perf_counter_ns()
        self.clf = Classifier(
            model,
            SessionConfig(
                provider=provider, provider_options=dict(cfg.provider_options), threads=threads,
                spinning=cfg.spinning, allow_fallback=cfg.allow_fallback, check_placement=False,
            ),
        )  # fmt: skip
        created = time.perf_counter_ns()
        self.x = images[:batch]
        self.gpu = provider in ("cuda", "tensorrt")
        if self.gpu:  # inputs bound on the device: host<->device copies are timed apart, not inside
            self.x_dev = self.clf.to_device(self.x)
            self.clf.run_on_device(self.x_dev)
        else:
            self.clf.logits(self.x)
        first = time.perf_counter_ns()
        used = threads or (self.clf.workers if batch > CHUNK else 1)
        self.label = f"{Path(model).name} {provider} {scenario} b{batch} t{used}"
        self.info = {
            "model": str(model), "model_sha256": sha256_file(Path(model)), "provider": provider,
            "provider_options": dict(cfg.provider_options), "scenario": scenario, "batch": batch, "threads": used,
            "threading": self.clf.threading(),
            "session_ms": (created - t0) / 1e6, "first_inference_ms": (first - created) / 1e6,
            "cold_start_ms": (first - t0) / 1e6, "io_binding": self.gpu,
        }  # fmt: skip

    def run(self) -> None:
        if self.gpu:
            self.clf.run_on_device(self.x_dev)
        else:
            self.clf.logits(self.x)

    def copies(self) -> dict[str, Callable[[], None]]:
        if not self.gpu:
            return {}
        out = self.clf.run_on_device(self.x_dev)
        return {"h2d": lambda: self.clf.to_device(self.x), "d2h": lambda: out.numpy()}


class TorchTarget:
    """PyTorch eager in inference mode; on CUDA each request ends with a synchronize, so the
    timing covers the GPU work (torch launches kernels asynchronously)."""

    def __init__(
        self, checkpoint: Path, scenario: str, batch: int, threads: int, images: np.ndarray, device: str = "cpu"
    ) -> None:
        import torch

        from edge_lstm.checkpoint import load_model

        t0 = time.perf_counter_ns()
        self.torch = torch
        self.device = device
        self.threads = threads
        self.threads_before = torch.get_num_threads()
        torch.set_num_threads(threads)
        model, _ = load_model(checkpoint)
        self.model = model.to(device)
        created = time.perf_counter_ns()
        self.x = torch.from_numpy(images[:batch].astype(np.float32) / 255).to(device)
        self.run()
        first = time.perf_counter_ns()
        provider = "torch" if device == "cpu" else f"torch-{device}"
        self.label = f"{provider} {scenario} b{batch} t{threads}"
        self.info = {
            "model": str(checkpoint), "model_sha256": sha256_file(Path(checkpoint)), "provider": provider,
            "provider_options": {"mode": "eager, inference_mode", "device": device}, "scenario": scenario,
            "batch": batch, "threads": threads, "session_ms": (created - t0) / 1e6,
            "first_inference_ms": (first - created) / 1e6, "cold_start_ms": (first - t0) / 1e6, "io_binding": False,
        }  # fmt: skip

    def run(self) -> None:
        # torch's thread count is process-wide: set it for every request, since configurations interleave.
        if self.torch.get_num_threads() != self.threads:
            self.torch.set_num_threads(self.threads)
        with self.torch.inference_mode():
            self.model(self.x)
        if self.device != "cpu":
            self.torch.cuda.synchronize()


class StreamingTarget:
    """One request = one row pushed; every 28th push is the 'last row to answer' latency."""

    def __init__(self, model: Path, provider: str, threads: int, cfg: BenchConfig, images: np.ndarray) -> None:
        t0 = time.perf_counter_ns()
        self.stream = StreamingClassifier(
            model,
            batch=1,
            config=SessionConfig(provider=provider, threads=threads, spinning=cfg.spinning, check_placement=False),
        )
        created = time.perf_counter_ns()
        self.rows = images[0].astype(np.float32) / 255  # (28, 28)
        self.stream.push(self.rows[0])
        first = time.perf_counter_ns()
        self.stream.reset()
        self.label = f"{Path(model).name} {provider} streaming b1 t{threads}"
        self.info = {
            "model": str(model), "model_sha256": sha256_file(Path(model)), "provider": provider,
            "provider_options": {}, "scenario": "streaming-step", "batch": 1, "threads": threads,
            "session_ms": (created - t0) / 1e6, "first_inference_ms": (first - created) / 1e6,
            "cold_start_ms": (first - t0) / 1e6, "io_binding": False,
        }  # fmt: skip

    def run(self) -> None:
        if self.stream.steps == contract.N_STEPS:
            self.stream.reset()
        self.stream.push(self.rows[self.stream.steps])
