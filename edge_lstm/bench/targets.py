"""What `edge-lstm bench` times: one class per kind of target, each doing one request per run().

Each target times its own creation (session_ms) and first call (first_inference_ms) and describes
itself in `info`, which becomes its result row. Targets get only what they use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_lstm.bench.profile import peak_rss_mb, rss_mb
from edge_lstm.fileio import sha256_file
from edge_lstm.runtime import Classifier, SessionConfig, StreamingClassifier
from edge_lstm.runtime.device import Bound
from edge_lstm.runtime.inputs import as_float
from edge_lstm.runtime.providers import DEVICE_PROVIDERS


@dataclass
class TargetInfo:
    model: str
    provider: str
    scenario: str  # single-stream, offline, streaming-step
    batch: int
    threads: int
    model_sha256: str = ""
    provider_options: dict[str, Any] = field(default_factory=dict)
    threading: str | None = None  # what the runner picked, for people
    cuda_graph: str | None = None  # on/off and why, for GPU rows
    session_ms: float | None = None
    first_inference_ms: float | None = None
    cold_start_ms: float | None = None
    io_binding: bool = False
    # Memory (MB, this process's resident set): before creating, grown by creation and by the first
    # inference, and the process's peak so far; the model file's size (what TFLite's benchmark_model reports).
    rss_before_mb: float | None = None
    session_growth_mb: float | None = None
    first_inference_growth_mb: float | None = None
    peak_rss_mb: float | None = None
    model_size_bytes: int | None = None
    profile: dict[str, Any] | None = None  # per-operator time, a separate run (--profile)

    @property
    def label(self) -> str:
        return f"{Path(self.model).name} {self.provider} {self.scenario} b{self.batch} t{self.threads}"

    def timed(
        self,
        t0: int,
        created: int,
        first: int,
        rss: tuple[float | None, float | None, float | None] = (None, None, None),
    ) -> TargetInfo:
        """Times (ns) and resident memory (MB) before creation, after it and after the first inference."""
        self.session_ms, self.first_inference_ms, self.cold_start_ms = (
            (created - t0) / 1e6,
            (first - created) / 1e6,
            (first - t0) / 1e6,
        )
        before, after_create, after_first = rss
        if before is not None and after_create is not None and after_first is not None:
            self.rss_before_mb = round(before, 1)
            self.session_growth_mb = round(after_create - before, 2)
            self.first_inference_growth_mb = round(after_first - after_create, 2)
        self.peak_rss_mb = peak_rss_mb()
        if Path(self.model).is_file():
            self.model_size_bytes = Path(self.model).stat().st_size
        return self


class Target(Protocol):
    """One thing to time: `run()` does one request (a batch, or one streaming row)."""

    info: TargetInfo

    def run(self) -> None: ...


class OrtTarget:
    """threads=None: the runner's auto threading (1 intra-op thread, large batches split per core).
    On a device provider the inputs are bound on the device (copies timed apart, see copies());
    with CUDA graphs each request replays the captured graph on its bound buffers."""

    def __init__(
        self,
        model: Path,
        provider: str,
        scenario: str,
        batch: int,
        threads: int | None,
        session: SessionConfig,
        images: np.ndarray,
    ) -> None:
        m0, t0 = rss_mb(), time.perf_counter_ns()
        self.clf = Classifier(model, dataclasses.replace(session, provider=provider, threads=threads))
        created, m1 = time.perf_counter_ns(), rss_mb()
        self.x = images[:batch]
        self.gpu = provider in DEVICE_PROVIDERS
        runner = self.clf.graph_runner
        self.bound: Bound | None = None
        self.request: Callable[[], object]  # one request, chosen once: no branching while timed
        if runner is not None:  # CUDA graph: this shape's buffers bound (filled with x) once, replayed
            self.x_float = as_float(self.x)
            bound = self.bound = runner.run_bound({self.clf.input_name: self.x_float})
            self.request = lambda: runner.replay(bound)
        elif self.gpu:  # inputs already on the device
            self.x_dev = self.clf.to_device(self.x)
            self.request = lambda: self.clf.run_on_device(self.x_dev)
        else:
            self.request = lambda: self.clf.logits(self.x)
        self.request()  # the first (cold) inference; with CUDA graphs onnxruntime's warm-up runs
        first, m2 = time.perf_counter_ns(), rss_mb()
        self.info = TargetInfo(
            model=str(model),
            provider=provider,
            scenario=scenario,
            batch=batch,
            threads=threads or self.clf.threads_for(batch),
            model_sha256=sha256_file(Path(model)),
            provider_options=dict(session.provider_options),
            threading=self.clf.threading(batch),
            cuda_graph=self.clf.cuda_graph_reason if self.gpu else None,
            io_binding=self.gpu,
        ).timed(t0, created, first, (m0, m1, m2))

    def run(self) -> None:
        self.request()

    def copies(self) -> dict[str, Callable[[], None]]:
        """Host->device and device->host copies of one request, timed apart from it."""
        if not self.gpu:
            return {}
        if self.bound is not None:
            out = self.bound.outputs[0]
            x, inp = self.x_float, self.bound.inputs[self.clf.input_name]
            return {"h2d": lambda: inp.update_inplace(x), "d2h": lambda: out.numpy()}
        out = self.clf.run_on_device(self.x_dev)
        return {"h2d": lambda: self.clf.to_device(self.x), "d2h": lambda: out.numpy()}


class TorchTarget:
    """PyTorch in inference mode: eager, or (on CUDA) a captured CUDA graph replayed, the fastest
    PyTorch there is for batch 1. On CUDA each request ends with a synchronize, so the timing covers
    the GPU work (torch launches kernels asynchronously)."""

    def __init__(
        self,
        checkpoint: Path,
        scenario: str,
        batch: int,
        threads: int,
        images: np.ndarray,
        device: str = "cpu",
        cuda_graph: bool = False,
    ) -> None:
        import torch

        from edge_lstm.training.checkpoint import load_model

        t0 = time.perf_counter_ns()
        self.torch, self.device, self.threads = torch, device, threads
        self.threads_before = torch.get_num_threads()
        torch.set_num_threads(threads)
        model, _ = load_model(checkpoint)
        self.model = model.to(device)
        created = time.perf_counter_ns()
        self.x = torch.from_numpy(as_float(images[:batch])).to(device)
        self.graph: Any = None
        if cuda_graph:
            self._capture()
        self.run()
        first = time.perf_counter_ns()
        provider = "torch" if device == "cpu" else f"torch-{device}" + ("-graph" if cuda_graph else "")
        mode = "CUDA graph, inference_mode" if cuda_graph else "eager, inference_mode"
        self.info = TargetInfo(
            model=str(checkpoint),
            provider=provider,
            scenario=scenario,
            batch=batch,
            threads=threads,
            model_sha256=sha256_file(Path(checkpoint)),
            provider_options={"mode": mode, "device": device},
        ).timed(t0, created, first)

    def _capture(self) -> None:
        torch = self.torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(3):  # warm up on a side stream, as torch.cuda.graph's docs ask
                self.model(self.x)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.out = self.model(self.x)

    def run(self) -> None:
        # torch's thread count is process-wide: set it for every request, since configurations interleave.
        if self.torch.get_num_threads() != self.threads:
            self.torch.set_num_threads(self.threads)
        if self.graph is not None:
            self.graph.replay()
        else:
            with self.torch.inference_mode():
                self.model(self.x)
        if self.device != "cpu":
            self.torch.cuda.synchronize()


class StreamingTarget:
    """One request = one row pushed; every 28th push is the 'last row to answer' latency."""

    def __init__(self, model: Path, provider: str, threads: int, session: SessionConfig, images: np.ndarray) -> None:
        m0, t0 = rss_mb(), time.perf_counter_ns()
        config = dataclasses.replace(session, provider=provider, threads=threads)
        self.stream = StreamingClassifier(model, batch=1, config=config)
        created, m1 = time.perf_counter_ns(), rss_mb()
        self.rows = as_float(images[0])  # (28, 28); a model of own sequences: (T, F)
        self.stream.push(self.rows[0])
        first, m2 = time.perf_counter_ns(), rss_mb()
        self.stream.reset()
        self.info = TargetInfo(
            model=str(model),
            provider=provider,
            scenario="streaming-step",
            batch=1,
            threads=threads,
            model_sha256=sha256_file(Path(model)),
            cuda_graph=self.stream.cuda_graph_reason if provider in DEVICE_PROVIDERS else None,
        ).timed(t0, created, first, (m0, m1, m2))

    def run(self) -> None:
        if self.stream.steps == len(self.rows):
            self.stream.reset()
        self.stream.push(self.rows[self.stream.steps])


class LiteRtTarget:
    """A .tflite file in LiteRT's interpreter (XNNPACK on the CPU): one request = one batch through
    the file's fixed batch size (chunked as the runner would)."""

    def __init__(self, model: Path, scenario: str, batch: int, threads: int, images: np.ndarray) -> None:
        from edge_lstm.litert import litert_logits

        t0 = time.perf_counter_ns()
        self.run_batch = litert_logits(Path(model), threads=threads)
        created = time.perf_counter_ns()
        self.x = as_float(images[:batch])
        self.run()
        first = time.perf_counter_ns()
        self.info = TargetInfo(
            model=str(model),
            provider="litert",
            scenario=scenario,
            batch=batch,
            threads=threads,
            model_sha256=sha256_file(Path(model)),
            provider_options={"engine": "LiteRT interpreter (XNNPACK)"},
        ).timed(t0, created, first)

    def run(self) -> None:
        self.run_batch(self.x)


SYNTHETIC_STEPS = 32  # the length of the synthetic sequences a model of any length is timed on


def synthetic_sequences(n: int, steps: int | None, features: int) -> np.ndarray:
    """Standard normal sequences (models of own data take raw values; timing does not depend on
    them), SYNTHETIC_STEPS long where the model takes any length (steps None or -1)."""
    length = steps if steps is not None and steps > 0 else SYNTHETIC_STEPS
    return np.random.default_rng(0).standard_normal((n, length, features)).astype(np.float32)


class UrlTarget:
    """A model behind the Open Inference Protocol (edge-lstm serve, Triton, KServe): one request =
    one batch sent over a persistent connection, binary tensors, as tritonclient sends them. The
    latency is the client's (request written to response read), as perf_analyzer reports it."""

    def __init__(self, url: str, scenario: str, batch: int, images: np.ndarray, token: str | None = None) -> None:
        from edge_lstm.bench.oip import Client, binary_request, parse_url

        t0 = time.perf_counter_ns()
        self.client = Client(parse_url(url, token))
        meta = self.client.metadata()  # refuses a model that is not an edge-lstm classifier
        created = time.perf_counter_ns()
        first_input = meta["inputs"][0]
        if first_input["name"] == "sequences":  # a model of own data: synthetic sequences of its sizes
            steps, features = (int(d) for d in first_input["shape"][1:])
            self.body, self.headers = binary_request(synthetic_sequences(batch, steps, features), "sequences")
        else:
            self.body, self.headers = binary_request(as_float(images[:batch]))
        self.run()
        first = time.perf_counter_ns()
        self.info = TargetInfo(
            model=url,
            provider="http",
            scenario=scenario,
            batch=batch,
            threads=0,
            provider_options={"server_model": meta.get("name"), "platform": meta.get("platform"), "tensors": "binary"},
            threading="the server's",
        ).timed(t0, created, first)

    def run(self) -> None:
        self.client.infer(self.body, self.headers)
