"""Everything one `edge-lstm bench` run needs to know, in one typed object (like LoadGen's TestSettings).

What to time (models, providers, scenarios, batch sizes, threads, baselines) and how (warm-up, the
two stop rules, rounds, concurrency, idle gap). validate() checks it all before anything is timed.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

from edge_lstm import contract
from edge_lstm.environment import available_memory, usable_cores
from edge_lstm.errors import ConfigError, ProviderError
from edge_lstm.fileio import not_a_file
from edge_lstm.runtime import providers
from edge_lstm.web.browser import BROWSER_PROVIDERS, find_chromium

SCENARIOS = ("single-stream", "offline", "server")
# Memory one offline image costs at most: the uint8 picture, its float32 copy, and the LSTM's
# per-step gates and outputs for the whole batch when onnxruntime runs it in one piece
# (28 x (512 + 128) floats). A configuration is refused before allocating if its biggest batch would
# need more than half the memory the machine has free.
BYTES_PER_IMAGE = 28 * 28 * (1 + 4) + 28 * (512 + 128) * 4 + 10 * 4
# Requests in flight at once. Each is an OS thread issuing requests to one shared session; past a
# few per core they only queue (the CPU provider runs at most one request per core), so more
# measures the queue, not the model, and every added thread adds min_count requests to the run.
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class BenchSettings:
    # --- what to time
    models: tuple[Path, ...] = (contract.DEFAULT_MODEL,)
    urls: tuple[str, ...] = ()  # Open Inference Protocol models: http://HOST:PORT/v2/models/NAME
    token: str | None = None  # bearer token for the URLs (default $EDGE_LSTM_TOKEN)
    providers: tuple[str, ...] = ("cpu",)
    scenarios: tuple[str, ...] = ("single-stream", "offline")
    batches: tuple[int, ...] = (1024,)  # offline batch sizes; single-stream is batch 1 by definition
    threads: tuple[int, ...] | None = None  # None: 1 for single-stream, all usable cores for offline
    spinning: bool | None = None  # onnxruntime intra-op spinning; None: onnxruntime's default
    provider_options: dict[str, str] = field(default_factory=dict)
    allow_fallback: bool = False
    cuda_graph: bool | None = None  # None: the runner's choice (on where safe), False: off, True: required
    torch_checkpoint: Path | None = None  # also time the PyTorch model (eager; on CUDA also a CUDA graph)
    streaming_model: Path | None = None  # also time the one-step model, row by row
    force: bool = False  # allow more threads than cores
    data_dir: Path | None = None
    verbose: bool = False  # onnxruntime's own warnings (--verbose)
    # --- how to time it
    warmup: int = 20  # warm-up iterations per configuration (excluded); 0 allowed
    warmup_s: float = 0.2  # ... and at least this long; both must be met
    min_count: int = 200  # measured iterations per configuration, at least
    min_seconds: float = 5.0  # measured seconds per configuration, at least (both rules apply)
    rounds: int = 5  # the measurement is split into this many interleaved rounds
    concurrency: int = 1  # requests in flight at once on a shared session (threads issuing them)
    interval_ms: float = 0.0  # idle gap between a request's end and the next one's start
    keep_raw: bool = False  # per-iteration latencies in the results
    profile: bool = False  # per-operator time of each onnxruntime configuration, a separate run after timing
    # --- the server scenario (Poisson arrivals, server.py)
    rates: tuple[float, ...] = ()  # offered requests per second, one run each
    latency_bound_ms: float | None = None  # search the highest rate whose p99 stays under this
    connections: int = 64  # the load generator's requests in flight at most

    def validate(self) -> None:
        cores = usable_cores()
        if not self.models and not self.urls and self.streaming_model is None:
            raise ConfigError("no model to benchmark")
        from edge_lstm.bench.oip import parse_url

        for url in self.urls:
            parse_url(url)
        if "server" in self.scenarios:
            if not self.rates and self.latency_bound_ms is None:
                raise ConfigError("--scenario server needs --rate R (requests/s) or --latency-bound MS")
            if any(not (math.isfinite(r) and r > 0) for r in self.rates):
                raise ConfigError("--rate must be positive requests per second")
            if self.latency_bound_ms is not None and not (
                math.isfinite(self.latency_bound_ms) and self.latency_bound_ms > 0
            ):
                raise ConfigError("--latency-bound must be a positive number of milliseconds")
            if not 1 <= self.connections <= 1024:
                raise ConfigError("--connections must be 1..1024")
        for what, values in (
            ("--provider", self.providers),
            ("--batch", self.batches),
            ("--threads", self.threads or ()),
            ("--scenario", self.scenarios),
            ("model", (*map(str, self.models), *self.urls)),
        ):
            if twice := sorted({str(v) for v in values if list(values).count(v) > 1}):
                raise ConfigError(
                    f"{what} names {', '.join(twice)} more than once; each configuration is measured once"
                )
        for b in self.batches:
            if b < 1:
                raise ConfigError(f"batch sizes must be >= 1, got {b}")
        if "offline" in self.scenarios and self.batches:
            need, free = max(self.batches) * BYTES_PER_IMAGE, available_memory()
            if free is not None and need > free // 2:
                raise ConfigError(
                    f"--batch {max(self.batches)} needs about {need / 2**30:.1f} GiB, over half of the "
                    f"{free / 2**30:.1f} GiB this machine has free; use a smaller batch"
                )
        for t in self.threads or ():
            if t < 1:
                raise ConfigError(f"threads must be >= 1, got {t}")
            if t > cores and not self.force:
                raise ConfigError(
                    f"{t} threads on {cores} usable cores oversubscribes the CPU; use --force to do it anyway"
                )
        for s in self.scenarios:
            if s not in SCENARIOS:
                raise ConfigError(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
        finite = all(math.isfinite(v) for v in (self.warmup_s, self.min_seconds, self.interval_ms))
        checks = [
            (finite, "times must be finite numbers"),
            (self.warmup >= 0 and self.warmup_s >= 0, "warm-up must be >= 0"),
            (self.min_count >= 1, "--min-count must be >= 1"),
            (self.min_seconds >= 0, "--min-time must be >= 0"),
            (self.rounds >= 1, "--rounds must be >= 1"),
            (
                1 <= self.concurrency <= MAX_CONCURRENCY,
                f"--concurrency must be between 1 and {MAX_CONCURRENCY} (more threads only queue on one session)",
            ),
            (self.interval_ms >= 0, "--interval-ms must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        for m in (*self.models, *([self.streaming_model] if self.streaming_model else [])):
            if (why := not_a_file(m)) is not None:
                raise ConfigError(f"model file {m} {why} (export one with `edge-lstm export`)")
        for p in self.providers if self.models or self.streaming_model else ():
            if p in BROWSER_PROVIDERS:  # onnxruntime-web in a headless Chromium: single-stream only
                if "single-stream" not in self.scenarios:
                    raise ConfigError(f"--provider {p} measures the single-stream scenario; add it to --scenario")
                if any(m.suffix.lower() != ".onnx" for m in self.models):
                    raise ConfigError(f"--provider {p} takes .onnx files (the page loads them in onnxruntime-web)")
                find_chromium()
                if importlib.util.find_spec("playwright") is None:
                    raise ConfigError(
                        f"--provider {p} drives Chromium with Playwright: "
                        "install the extra with `pip install -e '.[web]'`"
                    )
            else:
                try:
                    providers.spec(p)
                except ProviderError:
                    raise ConfigError(
                        f"unknown provider {p!r}; choose one of: {', '.join(providers.REGISTRY)} "
                        f"(onnxruntime), or {', '.join(BROWSER_PROVIDERS)} (onnxruntime-web in Chromium)"
                    ) from None
                providers.require(p)
        tflite = any(m.suffix.lower() == ".tflite" for m in self.models)
        if tflite and importlib.util.find_spec("ai_edge_litert") is None:
            raise ConfigError(".tflite files run in LiteRT: install the extra with `pip install -e '.[tflite]'`")
        if self.torch_checkpoint is not None and (why := not_a_file(self.torch_checkpoint)) is not None:
            raise ConfigError(f"checkpoint {self.torch_checkpoint} {why} (for --torch)")
