"""Bench results for people (a rich table, summary lines) and machines (JSON, CSV, PNG), written atomically."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_lstm.fileio import atomic_write_text

if TYPE_CHECKING:
    from edge_lstm.bench.run import BenchReport

CSV_FIELDS = [
    "model",
    "provider",
    "scenario",
    "batch",
    "threads",
    "concurrency",
    "interval_ms",
    "n",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p99_9_ms",
    "min_ms",
    "max_ms",
    "mean_ms",
    "stdev_ms",
    "cv",
    "throughput",
    "p50_vs_torch",
    "throughput_vs_torch",
    "session_ms",
    "first_inference_ms",
    "cold_start_ms",
    "h2d_ms",
    "d2h_ms",
    "cuda_graph",
    "last_row_to_answer_p50_ms",
    "answer_vs_full_sequence",
    "p50_vs_native",
    "model_size_bytes",
    "session_growth_mb",
    "first_inference_growth_mb",
    "peak_rss_mb",
]


def _ms(v: float | None) -> str:
    """Milliseconds with enough digits for microsecond latencies (never a bare 0.00)."""
    if v is None:
        return "-"
    return f"{v * 1000:.1f} us" if v < 1 else f"{v:.2f} ms"


def table(report: BenchReport) -> Any:
    from rich.table import Table

    t = Table(title="edge-lstm bench", caption=report.method["percentiles"], show_lines=False)
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
    for r in report.results:
        lo, hi = r.p50_ci_ms
        ci = f" [{_ms(lo)}, {_ms(hi)}]" if lo is not None and hi is not None else ""
        ratio = ""
        if r.p50_vs_torch is not None:
            ratio = f"{r.p50_vs_torch:.2f}x p50"
            if r.info.scenario == "offline" and r.throughput_vs_torch:
                ratio = f"{r.throughput_vs_torch:.2f}x thr"
        if r.p50_vs_native is not None:
            ratio = f"{r.p50_vs_native:.2f}x native"
        if r.answer_vs_full_sequence is not None:
            ratio = f"answer {_ms(r.last_row_to_answer_p50_ms)} = {r.answer_vs_full_sequence:.2f}x full model"
        provider = r.info.provider + (" +graph" if (r.info.cuda_graph or "").startswith("on") else "")
        t.add_row(
            Path(r.info.model).name,
            provider,
            r.info.scenario,
            str(r.info.batch),
            str(r.info.threads),
            str(r.n),
            _ms(r.p50_ms) + ci,
            _ms(r.p90_ms),
            _ms(r.p99_ms),
            _ms(r.p99_9_ms),
            f"{r.cv:.2f}",
            f"{r.throughput:,.0f}" if r.throughput else "-",
            ratio,
            _ms(r.info.cold_start_ms),
        )
    return t


def server_table(report: BenchReport) -> Any:
    """The server scenario: every run (with --latency-bound, every rate the search tried) and the verdict."""
    from rich.table import Table

    t = Table(
        title="server scenario (Poisson arrivals)",
        caption="latency: from a request's scheduled arrival to its answer (MLPerf's)",
    )
    # "valid" is MLPerf's: the generator kept its schedule; whether p99 met --latency-bound is a column of its own.
    bounded = any("max_rate" in entry for entry in report.server)
    columns = ["target", "via", "rate/s", "n", "p50 [95% CI]", "p90", "p99 [95% CI]", "lag p99", "gen CPU", "valid"]
    for col in columns + (["p99 <= bound"] if bounded else []):
        t.add_column(col, justify="left" if col in ("target", "via", "valid", "p99 <= bound") else "right")
    for entry in report.server:
        runs = [entry["run"]] if "run" in entry else entry["trail"]
        for r in runs:
            ci50 = f" [{_ms(r['p50_ci_ms'][0])}, {_ms(r['p50_ci_ms'][1])}]" if r["p50_ci_ms"][0] is not None else ""
            ci99 = f" [{_ms(r['p99_ci_ms'][0])}, {_ms(r['p99_ci_ms'][1])}]" if r["p99_ci_ms"][0] is not None else ""
            verdict = "yes" if r["valid"] else "no: " + "; ".join(r["why"])
            meets = (
                [] if not bounded else ["-" if r.get("meets_bound") is None else "yes" if r["meets_bound"] else "no"]
            )
            t.add_row(
                Path(r["target"]).name if "://" not in r["target"] else r["target"],
                r["via"],
                f"{r['rate']:,.0f}",
                str(r["n"]),
                _ms(r["p50_ms"]) + ci50,
                _ms(r["p90_ms"]),
                _ms(r["p99_ms"]) + ci99,
                _ms(r["lag_p99_ms"]),
                "-" if r["generator_cpu"] is None else f"{r['generator_cpu']:.2f}",
                verdict,
                *meets,
            )
        if "max_rate" in entry:
            best = entry["max_rate"]
            t.add_row(
                entry["target"],
                "max rate",
                "none" if best is None else f"{best:,.0f}",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                entry.get("none_because") or f"the highest with p99 <= {entry['latency_bound_ms']:g} ms",
            )
    return t


def memory_and_profile_lines(report: BenchReport) -> list[str]:
    """Per configuration: memory (file size, growth at session creation and first inference, the
    process's peak) and, with --profile, where the time goes per operator."""
    lines = []
    for r in report.results:
        i = r.info
        if i.session_growth_mb is not None:
            size = f"file {i.model_size_bytes / 1024:.0f} KiB, " if i.model_size_bytes else ""
            lines.append(
                f"memory   {i.label}: {size}session +{i.session_growth_mb:.1f} MB, first inference "
                f"+{i.first_inference_growth_mb:.1f} MB, process peak {i.peak_rss_mb:.0f} MB"
            )
        if i.profile:
            ops = ", ".join(
                f"{op} {100 * v['share']:.0f}% ({v['us']:.1f} us)" for op, v in list(i.profile["operators"].items())[:5]
            )
            lines.append(f"profile  {i.label}: {i.profile['nodes_us_per_request']:.1f} us in nodes per request: {ops}")
    return lines


def summary_lines(report: BenchReport) -> list[str]:
    """What the auto defaults chose (threads, CUDA graphs) and the fastest configuration per scenario."""
    lines = sorted(
        {f"threads  {r.info.scenario} b{r.info.batch}: {r.info.threading}" for r in report.results if r.info.threading}
    )
    lines += sorted(
        {
            f"cuda graph  {r.info.provider} {r.info.scenario} b{r.info.batch}: {r.info.cuda_graph}"
            for r in report.results
            if r.info.cuda_graph
        }
    )
    for key, b in report.best.items():
        shown = f"{b['value']:,.0f} samples/s" if b["metric"] == "samples/s" else f"p50 {b['value'] * 1000:.1f} us"
        lines.append(f"fastest  {key}: {Path(b['model']).name} on {b['provider']}, {b['threads']} thread(s), {shown}")
    return lines


def to_json(report: BenchReport, path: Path, raw: bool = True) -> None:
    atomic_write_text(Path(path), json.dumps(report.to_dict(raw), indent=1) + "\n")


def to_csv(report: BenchReport, path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for r in report.results:
        d = r.to_dict()
        w.writerow({k: d.get(k) for k in CSV_FIELDS})
    atomic_write_text(Path(path), buf.getvalue())


def to_plot(report: BenchReport, path: Path) -> None:
    from edge_lstm.plots import latency_report

    raw = {r.label: r.raw_ms for r in report.results if r.raw_ms is not None}
    latency_report([r.to_dict() for r in report.results], raw, Path(path))
