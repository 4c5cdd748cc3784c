"""Result rows: what one configuration measured, its statistics, and its ratio to PyTorch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.bench.harness import Measured
from edge_lstm.bench.stats import summarize
from edge_lstm.bench.targets import TargetInfo
from edge_lstm.runtime.providers import DEVICE_PROVIDERS, OWN_THREAD_POOL
from edge_lstm.web.browser import BROWSER_PROVIDERS

# Keys left out of a row's dict when they do not apply (None), so each row shows what it measured.
_OPTIONAL = {
    "threading",
    "cuda_graph",
    "h2d_ms",
    "d2h_ms",
    "last_row_to_answer_p50_ms",
    "per_image_ms",
    "answer_vs_full_sequence",
    "full_sequence_model",
    "raw_ms",
    "p50_vs_native",
    "profile",
    "rss_before_mb",
    "session_growth_mb",
    "first_inference_growth_mb",
    "peak_rss_mb",
    "model_size_bytes",
}


@dataclass
class ResultRow:
    info: TargetInfo
    n: int
    min_ms: float
    max_ms: float
    mean_ms: float
    stdev_ms: float
    cv: float
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    p50_ci_ms: list[float | None]
    p90_ci_ms: list[float | None]
    throughput: float | None  # samples/s over the measured wall time
    concurrency: int = 1
    interval_ms: float = 0.0
    h2d_ms: float | None = None  # host->device copy of one request's input (device providers)
    d2h_ms: float | None = None
    last_row_to_answer_p50_ms: float | None = None  # streaming: the push of row 28
    per_image_ms: float | None = None  # streaming: 28 rows
    answer_vs_full_sequence: float | None = None
    full_sequence_model: str | None = None
    p50_vs_torch: float | None = None
    throughput_vs_torch: float | None = None
    p50_vs_native: float | None = None  # browser rows: p50 over onnxruntime's (cpu) for the same file
    raw_ms: list[float] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.info.label

    def to_dict(self) -> dict[str, Any]:
        """Flat, as JSON and CSV take it. The ratios the table shows (p50_vs_torch, throughput_vs_torch)
        are always there, null where no PyTorch row compares; GPU rows' ratios are to the fastest
        PyTorch on CUDA (add_ratios)."""
        d = asdict(self)
        flat = {**d.pop("info"), **d}
        return {k: v for k, v in flat.items() if not (k in _OPTIONAL and v is None)}


def result_row(m: Measured, keep_raw: bool, concurrency: int = 1, interval_ms: float = 0.0) -> ResultRow:
    lat_ms = np.asarray(m.samples_ns, dtype=np.float64) / 1e6
    s = summarize(lat_ms)
    info = m.target.info
    streaming = info.scenario == "streaming-step"
    row = ResultRow(
        info=info,
        n=s.n,
        min_ms=s.min_ms,
        max_ms=s.max_ms,
        mean_ms=s.mean_ms,
        stdev_ms=s.stdev_ms,
        cv=s.cv,
        p50_ms=s.p50_ms,
        p90_ms=s.p90_ms,
        p95_ms=s.p95_ms,
        p99_ms=s.p99_ms,
        p99_9_ms=s.p99_9_ms,
        p50_ci_ms=list(s.p50_ci_ms),
        p90_ci_ms=list(s.p90_ci_ms),
        throughput=len(m.samples_ns) * info.batch / (m.busy_ns / 1e9) if m.busy_ns else None,
        concurrency=1 if streaming else concurrency,
        interval_ms=interval_ms,
    )
    for name, times in m.extra.items():
        setattr(row, f"{name}_ms", float(np.median(np.asarray(times) / 1e6)))
    if streaming:
        rows = contract.MNIST.steps or 28  # an image's rows: the push of row 28 is the last row to answer
        last = lat_ms[rows - 1 :: rows]
        row.last_row_to_answer_p50_ms = float(np.median(last)) if last.size else None
        row.per_image_ms = float(np.median(lat_ms)) * rows
    if keep_raw:
        row.raw_ms = lat_ms.round(6).tolist()
    return row


def is_torch(row: ResultRow) -> bool:
    return row.info.provider.startswith("torch")


def add_ratios(rows: list[ResultRow]) -> None:
    """p50 and throughput relative to PyTorch in the same scenario and batch; for the streaming
    model, the last-row-to-answer time relative to the full-sequence model's latency.

    CPU rows compare with PyTorch on the CPU at the same threads; rows of a provider with its own
    thread pool (OpenVINO) with the fastest PyTorch on the CPU in the same scenario and batch. GPU
    rows compare with the fastest PyTorch on CUDA in the same scenario and batch (eager or CUDA
    graph); threads do not apply there.
    """
    torch_cpu = {(r.info.scenario, r.info.batch, r.info.threads): r for r in rows if r.info.provider == "torch"}
    torch_gpu: dict[tuple[str, int], ResultRow] = {}
    for r in rows:
        if r.info.provider.startswith("torch-cuda") and r.p50_ms is not None:
            key = (r.info.scenario, r.info.batch)
            if key not in torch_gpu or r.p50_ms < (torch_gpu[key].p50_ms or float("inf")):
                torch_gpu[key] = r
    full = {
        (r.info.provider, r.info.threads): r for r in rows if r.info.scenario == "single-stream" and not is_torch(r)
    }
    native = {(r.info.model, r.info.scenario): r for r in rows if r.info.provider == "cpu"}
    for r in rows:
        n = native.get((r.info.model, r.info.scenario))
        if r.info.provider in BROWSER_PROVIDERS and n is not None and n.p50_ms and r.p50_ms:
            r.p50_vs_native = r.p50_ms / n.p50_ms  # the browser against onnxruntime on the same file
        if r.info.scenario == "streaming-step":
            f = full.get((r.info.provider, r.info.threads))
            if f and f.p50_ms and r.last_row_to_answer_p50_ms:
                r.answer_vs_full_sequence = r.last_row_to_answer_p50_ms / f.p50_ms
                r.full_sequence_model = f.info.model
            continue
        if is_torch(r):
            continue
        if r.info.provider in DEVICE_PROVIDERS:  # (LiteRT rows are CPU rows: compared with PyTorch on the CPU)
            b = torch_gpu.get((r.info.scenario, r.info.batch))
        elif r.info.provider in OWN_THREAD_POOL:  # threads are the provider's own: the fastest PyTorch on the CPU
            same = [t for (sc, ba, _), t in torch_cpu.items() if (sc, ba) == (r.info.scenario, r.info.batch)]
            b = min(same, key=lambda t: t.p50_ms or float("inf"), default=None)
        else:
            b = torch_cpu.get((r.info.scenario, r.info.batch, r.info.threads))
        if b is None:
            continue
        if r.p50_ms and b.p50_ms:
            r.p50_vs_torch = r.p50_ms / b.p50_ms
        if r.throughput and b.throughput:
            r.throughput_vs_torch = r.throughput / b.throughput


def best_per_scenario(rows: list[ResultRow]) -> dict[str, dict[str, Any]]:
    """The fastest measured configuration of each scenario and batch: lowest p50 for
    single-stream and streaming, highest samples/s for offline (the headline metrics)."""
    best: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r.info.scenario} b{r.info.batch}"
        offline = r.info.scenario == "offline"
        value = r.throughput if offline else r.p50_ms
        if value is None:
            continue
        cur = best.get(key)
        if cur is None or (value > cur["value"] if offline else value < cur["value"]):
            best[key] = {
                "model": r.info.model,
                "provider": r.info.provider,
                "threads": r.info.threads,
                "metric": "samples/s" if offline else "p50_ms",
                "value": value,
            }
    return best
