"""`edge-lstm bench` (library: edge_lstm.bench)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import (
    AllowFallback,
    DataDir,
    JsonFlag,
    ProviderOptions,
    Verbose,
    emit_json,
    fail,
    float_list,
    handle_errors,
    int_list,
)
from edge_lstm.cli.progress import PhasePrinter


@handle_errors
def bench(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="Model files (.onnx, .ort, .tflite; default export/model.onnx) and/or servers: "
            "http://HOST:PORT/v2/models/NAME (any Open Inference Protocol server)."
        ),
    ] = None,
    provider: Annotated[
        str,
        typer.Option(
            help="Comma-separated providers: cpu, cuda, tensorrt, openvino, dml, coreml, rocm, migraphx, qnn, xnnpack, "
            "webgpu (onnxruntime's); browser-wasm, browser-webgpu (onnxruntime-web in headless Chromium)."
        ),
    ] = "cpu",
    scenario: Annotated[
        str,
        typer.Option(
            help="single-stream (batch 1, p90 headline), offline (large batch, samples/s), server (Poisson "
            "arrivals at --rate or up to --latency-bound); comma-separated."
        ),
    ] = "single-stream,offline",
    rate: Annotated[
        str | None, typer.Option(help="Server scenario: offered requests per second, comma-separated (one run each).")
    ] = None,
    latency_bound: Annotated[
        float | None,
        typer.Option("--latency-bound", help="Server scenario: find the highest rate whose p99 stays under this (ms)."),
    ] = None,
    connections: Annotated[int, typer.Option(help="Server scenario: requests in flight at most.")] = 64,
    token: Annotated[str | None, typer.Option(help="Bearer token for the servers (default $EDGE_LSTM_TOKEN).")] = None,
    batch: Annotated[str, typer.Option(help="Offline batch sizes, comma-separated.")] = "1024",
    threads: Annotated[
        str | None,
        typer.Option(help="Intra-op threads, comma-separated (default: 1 for single-stream, all cores for offline)."),
    ] = None,
    warmup: Annotated[int, typer.Option(help="Warm-up iterations per configuration (excluded).")] = 20,
    warmup_time: Annotated[float, typer.Option("--warmup-time", help="... and at least this many seconds.")] = 0.2,
    min_count: Annotated[int, typer.Option(help="Measure at least this many requests per configuration ...")] = 200,
    min_time: Annotated[float, typer.Option(help="... and at least this many seconds.")] = 5.0,
    rounds: Annotated[int, typer.Option(help="Interleaved measurement rounds.")] = 5,
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once on a shared session (1..64).")] = 1,
    interval_ms: Annotated[float, typer.Option(help="Idle gap between requests (duty-cycle latency).")] = 0.0,
    spinning: Annotated[
        bool | None,
        typer.Option("--spinning/--no-spinning", help="onnxruntime intra-op thread spinning (default: onnxruntime's)."),
    ] = None,
    cuda_graph: Annotated[
        bool | None,
        typer.Option(
            "--cuda-graph/--no-cuda-graph", help="CUDA graphs on cuda (default: on where every node is on the GPU)."
        ),
    ] = None,
    provider_option: ProviderOptions = None,
    allow_fallback: AllowFallback = False,
    torch: Annotated[
        bool,
        typer.Option("--torch", help="Also time the PyTorch model (eager; on CUDA also a CUDA graph) and show ratios."),
    ] = False,
    torch_checkpoint: Annotated[Path, typer.Option(help="Checkpoint for --torch.")] = contract.DEFAULT_CHECKPOINT,
    streaming: Annotated[
        Path | None, typer.Option(help="Also time this streaming step model row by row (e.g. export/step.onnx).")
    ] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json-file", help="Write every result and the environment to this JSON file.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the results as CSV.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG: latency distributions and throughput vs batch.")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Keep per-iteration latencies in the JSON.")] = False,
    profile: Annotated[
        bool, typer.Option("--profile", help="Also time each operator (onnxruntime's profiler, a separate run).")
    ] = False,
    force: Annotated[bool, typer.Option(help="Allow more threads than cores.")] = False,
    streams: Annotated[
        int | None,
        typer.Option(
            help="URL of a step model: drive N streams over its WebSocket, closed loop, for --min-time seconds "
            "(rows/s, row latency, the clients' CPU)."
        ),
    ] = None,
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="Run on this device too (a name or URL, repeatable; `local` is this machine)."),
    ] = None,
    data_dir: DataDir = None,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Latency and throughput, MLPerf-style scenarios, with confidence intervals."""
    if on:
        # What the device's own bench takes; what only makes sense here is refused, not dropped silently.
        here_only = {
            "--torch": torch,
            "--csv": csv_out is not None,
            "--raw": raw,
            "--rate": rate is not None,
            "--latency-bound": latency_bound is not None,
            "a server URL": any("://" in m for m in models or []),
        }
        if given := [name for name, used in here_only.items() if used]:
            raise fail(
                f"--on runs model files on devices; {', '.join(given)} cannot go with it (run those here, without --on)"
            )
        forwarded = [
            "--provider",
            provider,
            "--scenario",
            scenario,
            "--batch",
            batch,
            "--warmup",
            str(warmup),
            "--warmup-time",
            str(warmup_time),
            "--min-count",
            str(min_count),
            "--min-time",
            str(min_time),
            "--rounds",
            str(rounds),
            "--concurrency",
            str(concurrency),
            "--interval-ms",
            str(interval_ms),
            *(["--threads", threads] if threads else []),
            *(["--profile"] if profile else []),
            *([] if spinning is None else ["--spinning" if spinning else "--no-spinning"]),
            *([] if cuda_graph is None else ["--cuda-graph" if cuda_graph else "--no-cuda-graph"]),
            *[a for o in provider_option or [] for a in ("--provider-option", o)],
            *(["--allow-fallback"] if allow_fallback else []),
        ]
        on_files = [Path(m) for m in models or [str(contract.DEFAULT_MODEL)]]
        return _bench_on(on, on_files, streaming, forwarded, json_file, plot, as_json)
    if streams is not None:
        return _bench_streams(models or [], streams, min_time, token, as_json)
    from rich.console import Console

    from edge_lstm.bench import BenchSettings, run_bench
    from edge_lstm.bench.oip import is_url
    from edge_lstm.bench.report import (
        memory_and_profile_lines,
        server_table,
        summary_lines,
        table,
        to_csv,
        to_json,
        to_plot,
    )
    from edge_lstm.fileio import check_writable_dir
    from edge_lstm.runtime.providers import parse_options

    urls = tuple(m for m in models or [] if is_url(m))
    files = tuple(Path(m) for m in models or [] if not is_url(m))
    settings = BenchSettings(
        models=files if models else ((contract.DEFAULT_MODEL,) if streaming is None else ()),
        urls=urls,
        token=token,
        rates=tuple(float_list(rate, "--rate")) if rate else (),
        latency_bound_ms=latency_bound,
        connections=connections,
        providers=tuple(p.strip() for p in provider.split(",") if p.strip()),
        scenarios=tuple(s.strip() for s in scenario.split(",") if s.strip()),
        batches=int_list(batch, "--batch"),
        threads=int_list(threads, "--threads") if threads else None,
        warmup=warmup,
        warmup_s=warmup_time,
        min_count=min_count,
        min_seconds=min_time,
        rounds=rounds,
        concurrency=concurrency,
        interval_ms=interval_ms,
        spinning=spinning,
        cuda_graph=cuda_graph,
        provider_options=parse_options(provider_option or []),
        allow_fallback=allow_fallback,
        torch_checkpoint=torch_checkpoint if torch else None,
        streaming_model=streaming,
        keep_raw=raw or plot is not None,
        force=force,
        data_dir=data_dir,
        verbose=verbose,
        profile=profile,
    )
    for out, opt in ((json_file, "--json-file"), (csv_out, "--csv"), (plot, "--plot")):
        if out is not None:  # before minutes of measuring, not after
            check_writable_dir(out.parent, opt)
    with PhasePrinter("benchmarking") as progress:
        report = run_bench(settings, progress=progress)
    # Fit the terminal; a pipe or a file has no width, so keep the whole table on one line per row there.
    if report.results:  # the server scenario alone has only its own table, below
        Console(width=None if sys.stdout.isatty() else 200).print(table(report))
    for line in [*summary_lines(report), *memory_and_profile_lines(report)]:
        typer.echo(line)
    if report.server:
        Console(width=None if sys.stdout.isatty() else 200).print(server_table(report))
    if json_file:
        to_json(report, json_file, raw=raw)
    if csv_out:
        to_csv(report, csv_out)
    if plot:
        to_plot(report, plot)
    if as_json:
        emit_json(report.to_dict(raw=raw))
    unmet = [f"{e['target']}: {e['none_because']}" for e in report.server if e.get("none_because")]
    if unmet:  # the table and files are written; the status says the bound was not met
        for line in unmet:
            typer.echo(line, err=True)
        raise typer.Exit(code=1)


def _bench_on(
    devices: list[str],
    models: list[Path],
    streaming: Path | None,
    forwarded: list[str],
    json_file: Path | None,
    plot: Path | None,
    as_json: bool,
) -> None:
    """The same bench on each device, one table with a device column (edge_lstm.devices.fleet)."""
    from rich.console import Console

    from edge_lstm.devices.fleet import bench_on
    from edge_lstm.devices.report import fleet_table, mcu_table, plot_devices
    from edge_lstm.fileio import atomic_write_text, not_a_file

    for m in [*models, *([streaming] if streaming else [])]:
        if (why := not_a_file(m)) is not None and not (Path(m) / "model.json").is_file():  # or a C library (--mcu)
            raise fail(f"model file {m} {why} (export one with `edge-lstm export`)")
    report = bench_on(devices, models, forwarded, streaming, progress=lambda m: typer.echo(m, err=True))
    if report.rows:
        Console(width=None if sys.stdout.isatty() else 220).print(fleet_table(report))
    if report.mcu_rows:
        Console(width=None if sys.stdout.isatty() else 220).print(mcu_table(report))
    if json_file:
        import json

        atomic_write_text(json_file, json.dumps(report.to_dict(), indent=1) + "\n")
    if plot and report.rows:
        plot_devices(report, plot)
    if as_json:
        emit_json(report.to_dict())
    if report.failures:
        raise typer.Exit(code=1)


def _bench_streams(targets: list[str], streams: int, seconds: float, token: str | None, as_json: bool) -> None:
    from edge_lstm.bench.oip import is_url, parse_url
    from edge_lstm.bench.streamload import run_streams

    if not targets or not all(is_url(t) for t in targets):
        raise fail("--streams measures a server: give the URL of a step model (http://HOST:PORT/v2/models/NAME)")
    runs = [run_streams(parse_url(t, token), streams, seconds) for t in targets]
    for r in runs:
        typer.echo(
            f"{r.url}: {r.streams} streams over the WebSocket, {r.rows_per_s:,.0f} rows/s, row p50 "
            f"{r.row_p50_ms:.2f} ms, p99 {r.row_p99_ms:.2f} ms, {r.errors} refused, "
            f"{r.clients} client processes using {r.client_cores:.2f} cores"
        )
    if as_json:
        emit_json({"streams": [r.to_dict() for r in runs]})
