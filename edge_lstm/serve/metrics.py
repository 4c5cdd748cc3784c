"""Prometheus metrics at /metrics, with the standard client library (prometheus_client).

One registry per app (several apps in one process, as in the tests, do not share counters). Under
`serve --workers` each worker writes its values to files in $PROMETHEUS_MULTIPROC_DIR (set by the
supervisor before the workers start) and /metrics, whichever worker answers it, adds up every
worker's: prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Latency buckets from 100 us (an idle server's batch 1) to 10 s (a queue that has backed up).
LATENCY_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "edge_lstm_requests",
            "Requests answered, by route, model and HTTP status.",
            ["route", "model", "code"],
            registry=r,
        )
        self.errors = Counter(
            "edge_lstm_request_errors",
            "Requests answered with an error status (4xx, 5xx).",
            ["route", "model", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "edge_lstm_request_latency_seconds",
            "Time from a request's arrival to its answer.",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "edge_lstm_batch_size",
            "Images (or stream rows) per runner call.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        # livesum: with workers, the sum over the running ones (a dead worker's files are removed)
        self.queue = Gauge(
            "edge_lstm_queue_depth",
            "Images waiting for the runner.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "edge_lstm_live_streams",
            "Sequences whose state the server holds.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        # Triton's statistics extension (statistics.py) reads these: counts and durations summed, per model
        # and version (version "": a request refused before it reached a version, a malformed body)
        self.infer_requests = Counter(
            "edge_lstm_infer_requests",
            "Inference requests, by model, version and outcome (success, fail).",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.infer_seconds = Counter(
            "edge_lstm_infer_seconds",
            "Inference requests' time from arrival to answer, summed, by outcome (success, fail).",
            ["model", "version", "outcome"],
            registry=r,
        )
        self.queue_seconds = Counter(
            "edge_lstm_queue_seconds", "Time images waited for the runner, summed.", ["model", "version"], registry=r
        )
        self.compute_seconds = Counter(
            "edge_lstm_compute_seconds",
            "Runner calls' time, summed, by batch size.",
            ["model", "version", "batch_size"],
            registry=r,
        )
        self.executions = Counter(
            "edge_lstm_executions",
            "Runner calls (step calls of a stream model), by batch size.",
            ["model", "version", "batch_size"],
            registry=r,
        )
        self.last_inference = Gauge(
            "edge_lstm_last_inference_ms",
            "When the model last answered (milliseconds since the epoch).",
            ["model", "version"],
            registry=r,
            multiprocess_mode="max",
        )
        self._children: dict[tuple[str, str, int, str], tuple[Any, ...]] = {}
        self._ran: dict[tuple[str, str, int], tuple[Any, Any, Any, Any]] = {}

    def answered(self, route: str, model: str, code: int, seconds: float, version: str = "") -> None:
        """One answered request; an inference's `version`: the one that answered ("" if none was reached)."""
        key = (route, model, code, version)
        children = self._children.get(key)
        if children is None:  # labels() costs a lock and a dict walk: once per label set, not per request
            outcome = "success" if code == 200 else "fail"
            counted = route == "infer" and code != 499  # Triton's statistics count what the model answered
            children = self._children[key] = (
                self.requests.labels(route, model, str(code)),
                self.errors.labels(route, model, str(code)) if code >= 400 else None,
                self.latency.labels(route, model),
                self.infer_seconds.labels(model, version, outcome) if counted else None,
                self.infer_requests.labels(model, version, outcome) if counted else None,
            )
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)
        if children[3] is not None:
            children[3].inc(seconds)
            children[4].inc()

    def ran(self, model: str, version: int, batch: int, queued_s: float, compute_s: float) -> None:
        """One runner call of `batch` images (or rows) that waited `queued_s` in all and ran `compute_s`."""
        key = (model, str(version), batch)
        children = self._ran.get(key)
        if children is None:  # as in answered: the label lookups once per (model, version, batch size)
            children = self._ran[key] = (
                self.queue_seconds.labels(model, str(version)),
                self.compute_seconds.labels(model, str(version), str(batch)),
                self.executions.labels(model, str(version), str(batch)),
                self.last_inference.labels(model, str(version)),
            )
        children[0].inc(queued_s)
        children[1].inc(compute_s)
        children[2].inc()
        children[3].set(time.time() * 1000)

    def registry_now(self) -> CollectorRegistry:
        """The registry /metrics reads: every worker's under `serve --workers`."""
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not folder:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry, folder)
        return registry

    def render(self) -> bytes:
        return generate_latest(self.registry_now())
