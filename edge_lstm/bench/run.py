"""`edge-lstm bench`: latency and throughput of exported models (and PyTorch) on any provider.

Builds the targets a BenchSettings asks for, measures them with the harness (harness.py), and
turns the samples into result rows with ratios (results.py). Method: bench/README.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm.bench.harness import Clock, Measured, measure
from edge_lstm.bench.profile import peak_rss_mb
from edge_lstm.bench.results import ResultRow, add_ratios, best_per_scenario, result_row
from edge_lstm.bench.settings import BenchSettings
from edge_lstm.bench.stats import METHOD
from edge_lstm.bench.targets import (
    LiteRtTarget,
    OrtTarget,
    StreamingTarget,
    TorchTarget,
    UrlTarget,
    synthetic_sequences,
)
from edge_lstm.data import mnist
from edge_lstm.environment import describe
from edge_lstm.errors import ConfigError
from edge_lstm.runtime import SessionConfig, auto_threads
from edge_lstm.runtime.providers import DEVICE_PROVIDERS
from edge_lstm.web.browser import BROWSER_PROVIDERS


@dataclass
class BenchReport:
    method: dict[str, Any]
    environment: dict[str, Any]
    results: list[ResultRow]
    best: dict[str, dict[str, Any]]
    server: list[dict[str, Any]] = field(default_factory=list)  # the server scenario's runs and searches

    def to_dict(self, raw: bool = True) -> dict[str, Any]:
        rows = [r.to_dict() for r in self.results]
        if not raw:
            for r in rows:
                r.pop("raw_ms", None)
        out = {"method": self.method, "environment": self.environment, "results": rows, "best": self.best}
        if self.server:
            out["server"] = self.server
        return out


def plan(cfg: BenchSettings) -> list[tuple[str, int, int | None]]:
    """(scenario, batch, threads) triples; threads None = the runner's auto threading."""
    out = []
    for scenario in (s for s in cfg.scenarios if s != "server"):  # the server scenario is open loop: server.py
        for batch in (1,) if scenario == "single-stream" else cfg.batches:
            for threads in cfg.threads or (None,):
                out.append((scenario, batch, threads))
    return out


def _torch_variants(cfg: BenchSettings) -> list[tuple[str, bool]]:
    """(device, cuda_graph): PyTorch on the CPU always; on CUDA, eager and a CUDA graph, when a CUDA
    provider is benchmarked and torch has CUDA (so the GPU rows compare with the fastest PyTorch)."""
    import torch

    wants_gpu = any(p in DEVICE_PROVIDERS for p in cfg.providers)
    if wants_gpu and torch.cuda.is_available():
        return [("cpu", False), ("cuda", False), ("cuda", True)]
    return [("cpu", False)]


def _restore_torch_threads(configs: list[Measured]) -> None:
    """TorchTarget changes torch's process-wide thread count; put it back for the caller."""
    for m in configs:
        if isinstance(m.target, TorchTarget):
            m.target.torch.set_num_threads(m.target.threads_before)
            return


def build_targets(cfg: BenchSettings, images: np.ndarray) -> list[Measured]:
    session = SessionConfig(
        provider_options=dict(cfg.provider_options),
        spinning=cfg.spinning,
        allow_fallback=cfg.allow_fallback,
        cuda_graph=cfg.cuda_graph,
        verbose=cfg.verbose,
    )
    configs: list[Measured] = []
    for scenario, batch, threads in plan(cfg):
        if cfg.torch_checkpoint is not None:
            for device, graph in _torch_variants(cfg):
                # PyTorch at the same parallelism as the auto runner: 1 thread for small batches, all cores for large.
                t = TorchTarget(
                    cfg.torch_checkpoint, scenario, batch, threads or auto_threads(batch), images, device, graph
                )
                configs.append(Measured(t))
        for url in cfg.urls:
            configs.append(Measured(UrlTarget(url, scenario, batch, images, cfg.token)))
        for model in cfg.models:
            if model.suffix.lower() == ".tflite":  # LiteRT, not onnxruntime: once, on the CPU
                configs.append(Measured(LiteRtTarget(model, scenario, batch, threads or 1, images)))
                continue
            for provider in cfg.providers:
                if provider in BROWSER_PROVIDERS:
                    continue  # measured in the page, after these (browser.py)
                configs.append(Measured(OrtTarget(model, provider, scenario, batch, threads, session, images)))
    if cfg.streaming_model is not None:
        for provider in (p for p in cfg.providers if p not in BROWSER_PROVIDERS):
            for threads in cfg.threads or (1,):  # one row is a tiny job: one thread
                configs.append(Measured(StreamingTarget(cfg.streaming_model, provider, threads, session, images)))
    return configs


def _profile(
    configs: list[Measured], cfg: BenchSettings, images: np.ndarray, progress: Callable[[str], None] | None
) -> None:
    """Per-operator time of every onnxruntime configuration, in a separate profiled run (after timing:
    profiling inflates latency)."""
    from edge_lstm.bench.profile import operator_profile

    for m in configs:
        t = m.target
        if isinstance(t, OrtTarget | StreamingTarget):
            info = t.info
            if progress:
                progress(f"profile {info.label}")
            session = SessionConfig(
                provider=info.provider,
                provider_options=dict(cfg.provider_options),
                threads=info.threads,
                allow_fallback=True,
                verbose=cfg.verbose,
            )
            info.profile = operator_profile(
                Path(info.model), session, info.batch, images, streaming=isinstance(t, StreamingTarget)
            )


def bench_inputs(cfg: BenchSettings) -> np.ndarray:
    """MNIST's test images (uint8) for MNIST models; synthetic sequences of their arch for models
    of own data."""
    from edge_lstm.runtime.model_info import file_arch

    paths = (*cfg.models, *([cfg.streaming_model] if cfg.streaming_model else []))
    found = {s for s in (file_arch(Path(m)) for m in paths) if s is not None}  # unreadable: the runner says why
    own = [s for s in found if not s.image]
    if not own:
        return mnist.load_split(mnist.locate(cfg.data_dir), "test").images
    if len(found) > 1:
        raise ConfigError("these models take inputs of different arch; bench them in separate runs")
    return synthetic_sequences(1024, own[0].steps, own[0].features)


def run_bench(
    cfg: BenchSettings, clock: Clock = time.perf_counter_ns, progress: Callable[[str], None] | None = None
) -> BenchReport:
    cfg.validate()
    images = bench_inputs(cfg)
    biggest = max([1, *cfg.batches])
    images = np.concatenate([images] * -(-biggest // len(images)))[:biggest] if biggest > len(images) else images
    configs: list[Measured] = []
    try:
        if progress:
            progress("opening the models" + (" (and PyTorch's)" if cfg.torch_checkpoint else ""))
        configs = build_targets(cfg, images)
        measure(configs, cfg, clock, progress)
        if cfg.profile:
            _profile(configs, cfg, images, progress)
        if "single-stream" in cfg.scenarios and any(p in BROWSER_PROVIDERS for p in cfg.providers):
            from edge_lstm.bench.browser import measure_in_browser

            if progress:
                progress("the page in headless Chromium")
            configs += measure_in_browser(cfg, images[0])
        server_runs = []
        if "server" in cfg.scenarios:
            from edge_lstm.bench.server import measure_servers

            server_runs = measure_servers(cfg, images[0], progress)
    finally:
        _restore_torch_threads(configs)
    rows = [result_row(m, cfg.keep_raw, cfg.concurrency, cfg.interval_ms) for m in configs]
    add_ratios(rows)
    return BenchReport(
        method={
            "percentiles": METHOD,
            "warmup": {"count": cfg.warmup, "seconds": cfg.warmup_s},
            "stop_rule": {"min_count": cfg.min_count, "min_seconds": cfg.min_seconds, "both": True},
            "rounds": cfg.rounds,
            "interleaved": True,
            "latency": "wall time of one request (one batch, or one streaming row) from the caller's side",
            "throughput": "samples / measured wall time (all in-flight requests together)",
            **(
                {
                    "server": "Poisson arrivals at the offered rate (open loop); latency from a request's scheduled "
                    "arrival to its whole answer (MLPerf's); valid when every request was answered and >= 100 measured"
                }
                if "server" in cfg.scenarios
                else {}
            ),
        },
        environment={**describe(), "peak_rss_mb": peak_rss_mb()},
        results=rows,
        best=best_per_scenario(rows),
        server=server_runs,
    )
