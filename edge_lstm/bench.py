"""`edge-lstm bench`: latency and throughput of exported models (and PyTorch) on any provider.

Method (see bench/README.md): every configuration is created first (session creation and the
first, cold inference timed on their own), warmed up (by count and/or time, excluded), then
measured in interleaved rounds (round-robin over configurations, so machine drift hits all of
them alike) until BOTH a minimum count and a minimum duration are met. Statistics in stats.py.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_lstm import contract, mnist, providers
from edge_lstm.bench_targets import OrtTarget, StreamingTarget, Target, TorchTarget
from edge_lstm.environment import describe, usable_cores
from edge_lstm.errors import ConfigError
from edge_lstm.fileio import not_a_file
from edge_lstm.runtime import CHUNK
from edge_lstm.stats import METHOD, summarize

SCENARIOS = ("single-stream", "offline")
Clock = Callable[[], int]  # nanoseconds


@dataclass(frozen=True)
class BenchConfig:
    models: tuple[Path, ...] = (Path("export/model.onnx"),)
    providers: tuple[str, ...] = ("cpu",)
    scenarios: tuple[str, ...] = SCENARIOS
    batches: tuple[int, ...] = (1024,)  # offline batch sizes; single-stream is batch 1 by definition
    threads: tuple[int, ...] | None = None  # None: 1 for single-stream, all usable cores for offline
    warmup: int = 20  # warm-up iterations per configuration (excluded); 0 allowed
    warmup_s: float = 0.2  # ... and at least this long; both must be met
    min_count: int = 200  # measured iterations per configuration, at least
    min_seconds: float = 5.0  # measured seconds per configuration, at least (both rules apply)
    rounds: int = 5  # the measurement is split into this many interleaved rounds
    concurrency: int = 1  # requests in flight at once on a shared session (threads issuing them)
    interval_ms: float = 0.0  # idle gap between a request's end and the next one's start
    spinning: bool | None = None  # onnxruntime intra-op spinning; None: onnxruntime's default
    provider_options: dict[str, str] = field(default_factory=dict)
    allow_fallback: bool = False
    torch_checkpoint: Path | None = None  # also time the PyTorch model (eager, inference mode)
    streaming_model: Path | None = None  # also time the one-step model, row by row
    keep_raw: bool = False
    force: bool = False  # allow more threads than cores
    data_dir: Path | None = None

    def validate(self) -> None:
        cores = usable_cores()
        if not self.models and self.streaming_model is None:
            raise ConfigError("no model to benchmark")
        for b in self.batches:
            if b < 1:
                raise ConfigError(f"batch sizes must be >= 1, got {b}")
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
        checks = [
            (self.warmup >= 0 and self.warmup_s >= 0, "warm-up must be >= 0"),
            (self.min_count >= 1, "--min-count must be >= 1"),
            (self.min_seconds >= 0, "--min-time must be >= 0"),
            (self.rounds >= 1, "--rounds must be >= 1"),
            (self.concurrency >= 1, "--concurrency must be >= 1"),
            (self.interval_ms >= 0, "--interval-ms must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        for m in (*self.models, *([self.streaming_model] if self.streaming_model else [])):
            if (why := not_a_file(m)) is not None:
                raise ConfigError(f"model file {m} {why} (export one with `edge-lstm export`)")
        for p in self.providers:
            providers.require(p)
        if self.torch_checkpoint is not None and (why := not_a_file(self.torch_checkpoint)) is not None:
            raise ConfigError(f"checkpoint {self.torch_checkpoint} {why} (for --torch)")


@dataclass
class Measured:
    info: dict[str, Any]  # model, provider, scenario, batch, threads, ...
    target: Target
    samples_ns: list[int] = field(default_factory=list)
    busy_ns: int = 0  # wall time spent in measurement slices (for throughput)
    extra: dict[str, list[int]] = field(default_factory=dict)  # e.g. host<->device copies


# ---------------------------------------------------------------- measurement
def _slice(m: Measured, count: int, seconds: float, cfg: BenchConfig, clock: Clock, record: bool = True) -> None:
    """Run `m` until `count` requests AND `seconds` have passed (per issuing thread for concurrency)."""
    gap = cfg.interval_ms / 1000

    def loop(out: list[int]) -> None:
        start = clock()
        done = 0
        while done < count or (clock() - start) < seconds * 1e9:
            t0 = clock()
            m.target.run()
            out.append(clock() - t0)
            done += 1
            if gap:
                time.sleep(gap)

    t_start = clock()
    if cfg.concurrency == 1:
        got: list[int] = []
        loop(got)
        results = [got]
    else:
        results = [[] for _ in range(cfg.concurrency)]
        workers = [threading.Thread(target=loop, args=(r,)) for r in results]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    if record:
        m.busy_ns += clock() - t_start
        for r in results:
            m.samples_ns.extend(r)


def measure(
    configs: list[Measured],
    cfg: BenchConfig,
    clock: Clock = time.perf_counter_ns,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Warm up each configuration, then measure all of them in interleaved rounds."""
    for m in configs:
        if progress:
            progress(f"warm-up {m.target.label}")
        _slice(m, cfg.warmup, cfg.warmup_s, cfg, clock, record=False)
    per_count = -(-cfg.min_count // cfg.rounds)  # ceil: the rounds together reach min_count
    per_seconds = cfg.min_seconds / cfg.rounds
    for r in range(cfg.rounds):
        order = configs if r % 2 == 0 else configs[::-1]  # alternate direction: no config always goes first
        for m in order:
            if progress:
                progress(f"round {r + 1}/{cfg.rounds} {m.target.label}")
            _slice(m, min(3, cfg.warmup), 0.0, cfg, clock, record=False)  # re-warm after the switch
            _slice(m, per_count, per_seconds, cfg, clock)
    for m in configs:  # host<->device copies, timed on their own (GPU providers only)
        copies = m.target.copies() if isinstance(m.target, OrtTarget) else {}
        for name, fn in copies.items():
            times = []
            for _ in range(max(20, cfg.min_count // 10)):
                t0 = clock()
                fn()
                times.append(clock() - t0)
            m.extra[name] = times


def result_row(m: Measured, keep_raw: bool) -> dict[str, Any]:
    lat_ms = np.asarray(m.samples_ns, dtype=np.float64) / 1e6
    s = summarize(lat_ms)
    batch = int(m.info["batch"])
    samples = len(m.samples_ns) * batch
    row: dict[str, Any] = {**m.info, **s.__dict__}
    row["p50_ci_ms"], row["p90_ci_ms"] = list(s.p50_ci_ms), list(s.p90_ci_ms)
    row["throughput"] = samples / (m.busy_ns / 1e9) if m.busy_ns else None  # samples/s over the measured wall time
    for name, times in m.extra.items():
        row[f"{name}_ms"] = float(np.median(np.asarray(times) / 1e6))
    if m.info["scenario"] == "streaming-step":
        last = lat_ms[27::28]  # the push of row 28: time from the last row to the answer
        row["last_row_to_answer_p50_ms"] = float(np.median(last)) if last.size else None
        row["per_image_ms"] = float(np.median(lat_ms)) * contract.N_STEPS
    if keep_raw:
        row["raw_ms"] = lat_ms.round(6).tolist()
    return row


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """p50 and throughput relative to PyTorch at the same scenario, batch and threads; for the
    streaming model, the last-row-to-answer time relative to the full-sequence model's latency."""
    torch_rows = [r for r in rows if r["provider"].startswith("torch")]
    base = {(r["provider"], r["scenario"], r["batch"], r["threads"]): r for r in torch_rows}
    full = {
        (r["provider"], r["threads"]): r
        for r in rows
        if r["scenario"] == "single-stream" and not r["provider"].startswith("torch")
    }
    for r in rows:
        if r["scenario"] == "streaming-step":
            f = full.get((r["provider"], r["threads"]))
            if f and f["p50_ms"] and r.get("last_row_to_answer_p50_ms"):
                r["answer_vs_full_sequence"] = r["last_row_to_answer_p50_ms"] / f["p50_ms"]
                r["full_sequence_model"] = f["model"]
            continue
        if r["provider"].startswith("torch"):
            continue
        # GPU providers are compared with PyTorch on CUDA (when it ran), the others with PyTorch on the CPU.
        gpu = r["provider"] in ("cuda", "tensorrt")
        b = base.get(("torch-cuda" if gpu else "torch", r["scenario"], r["batch"], r["threads"]))
        if b is None:
            continue
        if r["p50_ms"] and b["p50_ms"]:
            r["p50_vs_torch"] = r["p50_ms"] / b["p50_ms"]
        if r.get("throughput") and b.get("throughput"):
            r["throughput_vs_torch"] = r["throughput"] / b["throughput"]


def best_per_scenario(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fastest measured configuration of each scenario and batch: lowest p50 for
    single-stream and streaming, highest samples/s for offline (the headline metrics)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r['scenario']} b{r['batch']}"
        offline = r["scenario"] == "offline"
        value = r["throughput"] if offline else r["p50_ms"]
        if value is None:
            continue
        cur = best.get(key)
        if cur is None or (value > cur["value"] if offline else value < cur["value"]):
            best[key] = {
                "model": r["model"], "provider": r["provider"], "threads": r["threads"],
                "metric": "samples/s" if offline else "p50_ms", "value": value,
            }  # fmt: skip
    return best


def _torch_devices(cfg: BenchConfig) -> list[str]:
    """PyTorch on the CPU always; on CUDA too when a CUDA provider is benchmarked and torch has CUDA."""
    import torch

    wants_gpu = any(p in ("cuda", "tensorrt") for p in cfg.providers)
    return ["cpu", "cuda"] if wants_gpu and torch.cuda.is_available() else ["cpu"]


def _restore_torch_threads(configs: list[Measured]) -> None:
    """TorchTarget changes torch's process-wide thread count; put it back for the caller."""
    for m in configs:
        if isinstance(m.target, TorchTarget):
            m.target.torch.set_num_threads(m.target.threads_before)
            return


def plan(cfg: BenchConfig) -> list[tuple[str, int, int | None]]:
    """(scenario, batch, threads) triples; threads None = the runner's auto threading."""
    out = []
    for scenario in cfg.scenarios:
        for batch in (1,) if scenario == "single-stream" else cfg.batches:
            for threads in cfg.threads or (None,):
                out.append((scenario, batch, threads))
    return out


def torch_threads(threads: int | None, batch: int) -> int:
    """PyTorch at the same parallelism as the auto runner: 1 thread for small batches, all cores for large."""
    return threads or (usable_cores() if batch > CHUNK else 1)


def run_bench(
    cfg: BenchConfig, clock: Clock = time.perf_counter_ns, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    cfg.validate()
    images = mnist.load_split(mnist.locate(cfg.data_dir), "test").images
    biggest = max([1, *cfg.batches])
    images = np.concatenate([images] * -(-biggest // len(images)))[:biggest] if biggest > len(images) else images
    configs: list[Measured] = []
    for scenario, batch, threads in plan(cfg):
        if cfg.torch_checkpoint is not None:
            for device in _torch_devices(cfg):
                t = TorchTarget(cfg.torch_checkpoint, scenario, batch, torch_threads(threads, batch), images, device)
                configs.append(Measured(t.info, t))
        for model in cfg.models:
            for provider in cfg.providers:
                o = OrtTarget(model, provider, scenario, batch, threads, cfg, images)
                configs.append(Measured(o.info, o))
    if cfg.streaming_model is not None:
        for provider in cfg.providers:
            for threads in cfg.threads or (1,):  # one row is a tiny job: one thread
                s = StreamingTarget(cfg.streaming_model, provider, threads, cfg, images)
                configs.append(Measured(s.info, s))
    try:
        measure(configs, cfg, clock, progress)
    finally:
        _restore_torch_threads(configs)
    rows = [result_row(m, cfg.keep_raw) for m in configs]
    _add_ratios(rows)
    for r in rows:
        r["concurrency"] = cfg.concurrency if r["scenario"] != "streaming-step" else 1
        r["interval_ms"] = cfg.interval_ms
    return {
        "method": {
            "percentiles": METHOD,
            "warmup": {"count": cfg.warmup, "seconds": cfg.warmup_s},
            "stop_rule": {"min_count": cfg.min_count, "min_seconds": cfg.min_seconds, "both": True},
            "rounds": cfg.rounds,
            "interleaved": True,
            "latency": "wall time of one request (one batch, or one streaming row) from the caller's side",
            "throughput": "samples / measured wall time (all in-flight requests together)",
        },
        "environment": {**describe(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
        "results": rows,
        "best": best_per_scenario(rows),
    }
