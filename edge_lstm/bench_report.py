"""Bench results for people (a rich table) and machines (JSON, CSV, PNG), written atomically."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from edge_lstm.fileio import atomic_write_text

CSV_FIELDS = [
    "model", "provider", "scenario", "batch", "threads", "concurrency", "interval_ms", "n",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "min_ms", "max_ms", "mean_ms", "stdev_ms", "cv",
    "throughput", "p50_vs_torch", "throughput_vs_torch", "session_ms", "first_inference_ms", "cold_start_ms",
    "h2d_ms", "d2h_ms", "last_row_to_answer_p50_ms", "answer_vs_full_sequence",
]  # fmt: skip


def _ms(v: float | None) -> str:
    """Milliseconds with enough digits for microsecond latencies (never a bare 0.00)."""
    if v is None:
        return "-"
    return f"{v * 1000:.1f} us" if v < 1 else f"{v:.2f} ms"


def table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title="edge-lstm bench", caption=report["method"]["percentiles"], show_lines=False)
    for col in (
        "model",
        "provider",
        "scenario",
        "batch",
        "thr",
        "n",
        "p50 [95% CI]",
        "p90",
        "p99",
        "p99.9",
        "cv",
        "samples/s",
        "ratio",
        "cold start",
    ):
        t.add_column(col, justify="left" if col in ("model", "provider", "scenario") else "right")
    for r in report["results"]:
        lo, hi = r["p50_ci_ms"]
        ci = f" [{_ms(lo)}, {_ms(hi)}]" if lo is not None and hi is not None else ""
        ratio = ""
        if r.get("p50_vs_torch") is not None:
            ratio = f"{r['p50_vs_torch']:.2f}x p50"
            if r["scenario"] == "offline" and r.get("throughput_vs_torch"):
                ratio = f"{r['throughput_vs_torch']:.2f}x thr"
        if r.get("answer_vs_full_sequence") is not None:
            ratio = f"answer {_ms(r['last_row_to_answer_p50_ms'])} = {r['answer_vs_full_sequence']:.2f}x full model"
        t.add_row(
            Path(r["model"]).name, r["provider"], r["scenario"], str(r["batch"]), str(r["threads"]), str(r["n"]),
            _ms(r["p50_ms"]) + ci, _ms(r["p90_ms"]), _ms(r["p99_ms"]), _ms(r["p99_9_ms"]), f"{r['cv']:.2f}",
            f"{r['throughput']:,.0f}" if r.get("throughput") else "-", ratio, _ms(r["cold_start_ms"]),
        )  # fmt: skip
    return t


def to_json(report: dict[str, Any], path: Path) -> None:
    atomic_write_text(Path(path), json.dumps(report, indent=1) + "\n")


def to_csv(report: dict[str, Any], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in report["results"]:
        w.writerow({k: r.get(k) for k in CSV_FIELDS})
    atomic_write_text(Path(path), buf.getvalue())


def to_plot(report: dict[str, Any], raw: Mapping[str, Sequence[float]], path: Path) -> None:
    from edge_lstm.plots import latency_report

    latency_report(report["results"], raw, Path(path))
