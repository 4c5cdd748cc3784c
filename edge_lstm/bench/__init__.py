"""Bench: latency and throughput of model files (and PyTorch), measured as bench/README.md says.

`settings` (BenchSettings: what and how to time), `targets` (what one request is), `harness` (the
measurement loop), `stats` (percentiles and their CIs), `results` (typed rows, ratios), `report`
(table, JSON, CSV, PNG), `run` (the `edge-lstm bench` command's job).
"""

from edge_lstm.bench.harness import Measured, measure
from edge_lstm.bench.results import ResultRow, result_row
from edge_lstm.bench.run import BenchReport, run_bench
from edge_lstm.bench.settings import BenchSettings
from edge_lstm.bench.targets import OrtTarget, StreamingTarget, Target, TargetInfo, TorchTarget

__all__ = [
    "BenchReport",
    "BenchSettings",
    "Measured",
    "OrtTarget",
    "ResultRow",
    "StreamingTarget",
    "Target",
    "TargetInfo",
    "TorchTarget",
    "measure",
    "result_row",
    "run_bench",
]
