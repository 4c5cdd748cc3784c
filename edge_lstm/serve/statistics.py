"""Triton's statistics extension: `GET /v2/models/stats`, `GET /v2/models/NAME[/versions/V]/stats` and
gRPC's ModelStatistics, what perf_analyzer and dashboards read, in the form tritonclient parses.

The numbers are /metrics' (metrics.py): read from the same registry, so under `serve --workers` they
are every worker's, summed, whichever worker answers; per model and version, as Triton's. What Triton
splits into compute_input, infer and output is one runner call here: all of it is compute_infer. No
response cache: cache hits and misses are 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from edge_lstm.serve.metrics import Metrics

DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")


def _duration(count: float = 0, seconds: float = 0) -> dict[str, int]:
    return {"count": int(count), "ns": int(seconds * 1e9)}


def model_stats(metrics: Metrics, names: list[str], loaded: Mapping[str, Mapping[int, Any]]) -> dict[str, Any]:
    """{"model_stats": [...]} for `names` (in order), one entry per loaded version (`loaded`: name ->
    version -> model, as the registry holds them), as Triton's HTTP statistics answer. A request refused
    before it reached a version (a malformed body) counts as a failure of the newest."""
    values: dict[tuple[str, ...], float] = defaultdict(float)
    for family in metrics.registry_now().collect():
        for sample in family.samples:
            labels = sample.labels
            if "version" in labels:
                extra = labels.get("outcome", labels.get("batch_size", ""))
                values[(sample.name, labels["model"], labels["version"], extra)] += sample.value
    out = []
    for name in names:
        versions = sorted(loaded.get(name, {})) or [1]
        for version in versions:
            out.append(_one(values, name, str(version), newest=version == versions[-1]))
    return {"model_stats": out}


def _one(values: dict[tuple[str, ...], float], name: str, version: str, newest: bool) -> dict[str, Any]:
    def v(metric: str, extra: str = "") -> float:
        return values[(metric, name, version, extra)] + (values[(metric, name, "", extra)] if newest else 0.0)

    successes = v("edge_lstm_infer_requests_total", "success")
    sizes = sorted(
        int(b)
        for (metric, model, ver, b) in values
        if metric == "edge_lstm_executions_total" and (model, ver) == (name, version)
    )
    executions = sum(v("edge_lstm_executions_total", str(b)) for b in sizes)  # runner calls, a stream's steps included
    stats = {k: _duration() for k in DURATIONS}
    stats["success"] = _duration(successes, v("edge_lstm_infer_seconds_total", "success"))
    stats["fail"] = _duration(v("edge_lstm_infer_requests_total", "fail"), v("edge_lstm_infer_seconds_total", "fail"))
    stats["queue"] = _duration(successes, v("edge_lstm_queue_seconds_total"))
    stats["compute_infer"] = _duration(executions, sum(v("edge_lstm_compute_seconds_total", str(b)) for b in sizes))
    return {
        "name": name,
        "version": version,
        "last_inference": int(v("edge_lstm_last_inference_ms")),
        "inference_count": int(sum(b * v("edge_lstm_executions_total", str(b)) for b in sizes)),
        "execution_count": int(executions),
        "inference_stats": stats,
        "memory_usage": [],  # Triton's: memory a backend reports; onnxruntime's is not counted here
        "response_stats": {},  # Triton's: per response of decoupled models; every answer here is one
        "batch_stats": [
            {
                "batch_size": b,
                "compute_input": _duration(),
                "compute_infer": _duration(
                    v("edge_lstm_executions_total", str(b)), v("edge_lstm_compute_seconds_total", str(b))
                ),
                "compute_output": _duration(),
            }
            for b in sizes
        ],
    }
