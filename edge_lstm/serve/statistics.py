"""Triton's statistics extension: `GET /v2/models/stats`, `GET /v2/models/NAME[/versions/V]/stats` and
gRPC's ModelStatistics, what perf_analyzer and dashboards read, in the form tritonclient parses.

The numbers are /metrics' (metrics.py): read from the same registry, so under `serve --workers` they
are every worker's, summed, whichever worker answers. What Triton splits into compute_input, infer and
output is one runner call here: all of it is compute_infer. No response cache: cache hits and misses
are 0.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from edge_lstm.serve.metrics import Metrics

DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output", "cache_hit", "cache_miss")


def _duration(count: float = 0, seconds: float = 0) -> dict[str, int]:
    return {"count": int(count), "ns": int(seconds * 1e9)}


def model_stats(metrics: Metrics, names: list[str], served: Mapping[str, Any]) -> dict[str, Any]:
    """{"model_stats": [...]} for `names` (in order), as Triton's HTTP statistics answer. Counted per
    model over its versions (the metrics' labels are the model's name), under its newest served
    version's number (`served`: name -> that version, as registry.latest holds it)."""
    values: dict[tuple[str, ...], float] = defaultdict(float)
    for family in metrics.registry_now().collect():
        for sample in family.samples:
            labels = sample.labels
            key = (sample.name, labels.get("model", ""), labels.get("outcome", labels.get("batch_size", "")))
            if sample.name == "edge_lstm_requests_total" and labels.get("route") == "infer":
                key = (sample.name, labels["model"], "success" if labels["code"] == "200" else labels["code"])
            values[key] += sample.value
    out = []
    for name in names:
        successes = values[("edge_lstm_requests_total", name, "success")]
        failures = sum(
            v
            for (metric, model, code), v in values.items()
            if metric == "edge_lstm_requests_total" and model == name and code not in ("success", "499")
        )
        sizes = sorted(
            int(size) for (metric, model, size) in values if metric == "edge_lstm_executions_total" and model == name
        )
        executions = values[("edge_lstm_batch_size_count", name, "")]  # runner calls, step models' included
        compute = sum(values[("edge_lstm_compute_seconds_total", name, str(b))] for b in sizes)
        stats = {k: _duration() for k in DURATIONS}
        stats["success"] = _duration(successes, values[("edge_lstm_infer_seconds_total", name, "success")])
        stats["fail"] = _duration(failures, values[("edge_lstm_infer_seconds_total", name, "fail")])
        stats["queue"] = _duration(successes, values[("edge_lstm_queue_seconds_total", name, "")])
        stats["compute_infer"] = _duration(executions, compute)
        out.append(
            {
                "name": name,
                "version": str(served[name].version) if name in served else "",
                "last_inference": int(values[("edge_lstm_last_inference_ms", name, "")]),
                "inference_count": int(values[("edge_lstm_batch_size_sum", name, "")]),
                "execution_count": int(executions),
                "inference_stats": stats,
                "memory_usage": [],  # Triton's: memory a backend reports; onnxruntime's is not counted here
                "response_stats": {},  # Triton's: per response of decoupled models; every answer here is one
                "batch_stats": [
                    {
                        "batch_size": b,
                        "compute_input": _duration(),
                        "compute_infer": _duration(
                            values[("edge_lstm_executions_total", name, str(b))],
                            values[("edge_lstm_compute_seconds_total", name, str(b))],
                        ),
                        "compute_output": _duration(),
                    }
                    for b in sizes
                ],
            }
        )
    return {"model_stats": out}
