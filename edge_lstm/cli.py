"""The `edge-lstm` command: a thin typer layer over the library.

Each command parses its options, calls one library function and prints. Library errors
(EdgeLstmError) become one line on stderr and exit code 1; nothing heavy is imported at module
level, so `edge-lstm --help` is instant and the deployment commands never import torch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from edge_lstm import __version__
from edge_lstm.errors import EdgeLstmError, TrainingInterrupted

app = typer.Typer(
    name="edge-lstm",
    help="Train, export, run and benchmark an LSTM MNIST classifier for edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])

# Options shared by several commands, declared once.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder with the MNIST IDX files (default: $EDGE_LSTM_DATA, the bundled copy, the cache, then a download)."
    ),
]
ProviderOptions = Annotated[
    list[str] | None, typer.Option("--provider-option", help="KEY=VALUE for the provider (repeatable).")
]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and a non-zero exit, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeLstmError as e:
            raise fail(str(e), 130 if isinstance(e, TrainingInterrupted) else 1) from None
        except ModuleNotFoundError as e:
            if e.name in ("torch", "onnxscript"):
                raise fail(
                    f"{e.name} is not installed: training and export need it; "
                    "install the extra with `pip install -e '.[torch]'` (or 'edge-lstm[torch]')"
                ) from None
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    """One JSON object on the last line of stdout (machine-readable, `--json`)."""
    typer.echo(json.dumps(obj, default=str))


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"edge-lstm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


# ---------------------------------------------------------------- train
class PresetName(str, Enum):
    default = "default"
    seed = "seed"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
@handle_errors
def train(
    preset: Annotated[
        PresetName,
        typer.Option(help="default: our recipe (>= 99% test accuracy); seed: the TensorFlow tutorial, exactly."),
    ] = PresetName.default,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training set.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="(Peak) learning rate.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives bit-identical weights on CPU.")
    ] = None,
    subset: Annotated[int | None, typer.Option(help="Train on the first N training images only (quick runs).")] = None,
    test_subset: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Stop after this many training samples.")] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between loss/accuracy lines.")] = None,
    anytime: Annotated[
        float | None,
        typer.Option(
            help="Weight of a loss on the answers after every earlier row (streaming 'anytime' prediction); 0 = off."
        ),
    ] = None,
    data_dir: DataDir = None,
    out: Annotated[Path, typer.Option(help="Run folder: model.pt, last.pt, metrics.jsonl, training_curve.png.")] = Path(
        "runs/latest"
    ),
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from OUT/last.pt.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the LSTM classifier on MNIST."""
    from edge_lstm.cli_reporting import TrainPrinter
    from edge_lstm.train import override, preset_config
    from edge_lstm.train import train as run_training

    config = override(
        preset_config(preset.value), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        subset=subset, test_subset=test_subset, max_samples=max_samples, log_every=log_every, anytime=anytime,
    )  # fmt: skip
    config.validate()  # before importing/initialising anything slow
    dev = _resolve_device(device.value)
    with TrainPrinter(quiet=False) as printer:
        result = run_training(config, run_dir=out, data_dir=data_dir, device=dev, resume=resume, reporter=printer)
    typer.echo(
        f"test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs} epochs / {result.steps} steps "
        f"in {result.train_seconds:.1f} s; checkpoint {result.checkpoint}"
    )
    if as_json:
        emit_json(result.to_dict())


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EdgeLstmError("--device cuda: this PyTorch build has no CUDA device; use --device cpu")
    return device


# ---------------------------------------------------------------- eval
@app.command("eval")
@handle_errors
def eval_(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A checkpoint (.pt) or an ONNX/ORT model (default runs/latest/model.pt, or export/step.onnx with --streaming)."
        ),
    ] = None,
    provider: Annotated[str, typer.Option(help="onnxruntime provider for .onnx files (cpu, cuda, ...).")] = "cpu",
    streaming: Annotated[
        bool, typer.Option("--streaming", help="MODEL is a step model: accuracy after each number of rows.")
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="With --streaming: where to write the accuracy-vs-rows PNG (default beside the model)."),
    ] = None,
    data_dir: DataDir = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Test-set accuracy and per-class accuracy of a checkpoint or an ONNX model."""
    from edge_lstm.evaluate import evaluate, evaluate_streaming

    if limit is not None and limit < 1:
        raise fail(f"--limit must be >= 1, got {limit}")
    if streaming:
        model = model or Path("export/step.onnx")
        curve = evaluate_streaming(model, data_dir=data_dir, provider=provider, limit=limit)
        png = plot or model.with_name(f"{model.stem}.accuracy_vs_rows.png")
        from edge_lstm.plots import accuracy_vs_rows

        accuracy_vs_rows(range(1, 29), curve.accuracy_after_rows, png)
        typer.echo(f"{curve.model} ({curve.backend}), {curve.n} test images: accuracy after k of 28 rows")
        for k, acc in enumerate(curve.accuracy_after_rows, start=1):
            typer.echo(f"  {k:2d} rows  {100 * acc:6.2f}%")
        typer.echo(f"99% of the final accuracy after {curve.rows_needed()} rows; plot: {png}")
        if as_json:
            emit_json({**curve.to_dict(), "plot": str(png), "rows_for_99pct_of_final": curve.rows_needed()})
        return
    report = evaluate(model or Path("runs/latest/model.pt"), data_dir=data_dir, provider=provider, limit=limit)
    typer.echo(
        f"{report.model} ({report.backend}): accuracy {100 * report.accuracy:.2f}% ({report.correct}/{report.n})"
    )
    typer.echo("per class: " + "  ".join(f"{k}:{100 * a:.1f}%" for k, a in enumerate(report.per_class)))
    if as_json:
        emit_json(report.to_dict())


# ---------------------------------------------------------------- export
@app.command()
@handle_errors
def export(
    output: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the model (default export/model.onnx, or export/step.onnx with --streaming)."
        ),
    ] = None,
    checkpoint: Annotated[Path, typer.Option(help="The checkpoint to export.")] = Path("runs/latest/model.pt"),
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the exporter's).")] = None,
    int8: Annotated[
        bool, typer.Option("--int8", help="Also write a dynamic-int8 model (DynamicQuantizeLSTM).")
    ] = False,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Also write a float16-weights model (for GPU providers).")
    ] = False,
    ort: Annotated[
        bool, typer.Option("--ort", help="Also write the ORT format (onnxruntime mobile/minimal builds).")
    ] = False,
    streaming: Annotated[
        bool, typer.Option("--streaming", help="Export the one-row-per-call step model instead.")
    ] = False,
    fuse: Annotated[
        bool, typer.Option("--fuse/--no-fuse", help="Fold the input Linear into the LSTM's input weights.")
    ] = True,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check every file against PyTorch in onnxruntime.")
    ] = True,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a checkpoint to ONNX (dynamic batch), verified against PyTorch, plus edge variants."""
    from edge_lstm.export import ExportConfig
    from edge_lstm.export import export as run_export

    if output is None:
        output = Path("export/step.onnx" if streaming else "export/model.onnx")
    if output.suffix.lower() != ".onnx":
        raise fail(f"{output}: the output name must end in .onnx (variants get .int8.onnx, .fp16.onnx, .ort)")
    config = ExportConfig(
        output=output, checkpoint=checkpoint, opset=opset, fuse=fuse, streaming=streaming,
        int8=int8, fp16=fp16, ort=ort, verify=verify, data_dir=data_dir,
    )  # fmt: skip
    artifacts = run_export(config)
    for a in artifacts:
        line = f"{a.variant:<5} {a.path}  {a.size_bytes / 1024:.1f} KiB"
        if a.verified and a.accuracy is not None and a.agreement is not None:
            worst = max(a.max_abs_diff.values())
            line += (
                f"  verified: max |diff| {worst:.1e} at batch 1/3/7/128, "
                f"class agreement {100 * a.agreement:.2f}%, accuracy {100 * a.accuracy:.2f}%"
            )
        else:
            line += "  (not verified)"
        typer.echo(line)
    if as_json:
        emit_json({"artifacts": [a.to_dict() for a in artifacts]})


# ---------------------------------------------------------------- inspect
@app.command()
@handle_errors
def inspect(
    model: Annotated[Path, typer.Argument(help="An .onnx or .ort file.")] = Path("export/model.onnx"),
    provider: Annotated[str, typer.Option(help="Show where the nodes are placed on this provider.")] = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Inputs, outputs, opset, operators, size, parameters, metadata and node placement of a model."""
    from edge_lstm.inspect_model import format_text, inspect_file
    from edge_lstm.runtime import Classifier, SessionConfig, StreamingClassifier

    info = inspect_file(model)
    config = SessionConfig(provider=provider, check_placement=True, allow_fallback=True)
    names = [i["name"] for i in info.get("inputs", [])]
    runner = StreamingClassifier(model, config=config) if names == ["row", "h", "c"] else Classifier(model, config)
    info["placement"] = runner.placement
    typer.echo(format_text(info))
    if as_json:
        emit_json(info)


# ---------------------------------------------------------------- providers
@app.command("providers")
@handle_errors
def providers_(
    as_json: JsonFlag = False,
) -> None:
    """Execution providers: which this onnxruntime has, and the package for each of the others."""
    import onnxruntime as ort

    from edge_lstm import providers as reg

    have = reg.available()
    rows: list[dict[str, Any]] = [
        {"name": s.name, "ep": s.ep, "available": s.ep in have, "device": s.device, "package": s.package}
        for s in reg.REGISTRY.values()
    ]
    typer.echo(f"onnxruntime {ort.__version__} (device: {ort.get_device()})")
    for r in rows:
        mark = "yes" if r["available"] else "no "
        typer.echo(
            f"  {mark}  {r['name']:<9} {r['ep']:<27} {r['device']:<30} {'' if r['available'] else 'install: ' + r['package']}"
        )
    if as_json:
        emit_json({"onnxruntime": ort.__version__, "device": ort.get_device(), "providers": rows, "available": have})


# ---------------------------------------------------------------- predict
@app.command()
@handle_errors
def predict(
    model: Annotated[Path, typer.Argument(help="An exported .onnx/.ort classifier.")],
    inputs: Annotated[list[Path], typer.Argument(help="PNG/JPEG pictures, .npy arrays or IDX files.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="How many classes to show per input.")] = 1,
    normalize: Annotated[
        bool,
        typer.Option(
            "--normalize/--no-normalize",
            help="Bring pictures into MNIST's convention (invert, fit 20x20, centre of mass).",
        ),
    ] = True,
    provider: Annotated[str, typer.Option(help="onnxruntime provider.")] = "cpu",
    provider_option: ProviderOptions = None,
    allow_fallback: Annotated[
        bool, typer.Option(help="Accept the LSTM running on another provider than asked.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Classify images; a file that fails is reported and the others go on (exit 1 if any failed)."""
    from edge_lstm.predict import predict_files
    from edge_lstm.providers import parse_options
    from edge_lstm.runtime import Classifier, SessionConfig

    if not 1 <= top_k <= 10:
        raise fail(f"--top-k must be between 1 and 10, got {top_k}")
    config = SessionConfig(
        provider=provider, provider_options=parse_options(provider_option or []), allow_fallback=allow_fallback
    )
    clf = Classifier(model, config)
    results = predict_files(clf, inputs, top_k=top_k, normalize=normalize)
    for r in results:
        if r.error is not None:
            typer.echo(f"error: {r.error}", err=True)
        else:
            alts = "  ".join(f"{k}:{100 * p:.1f}%" for k, p in r.top[1:])
            typer.echo(f"{r.source}: {r.label} ({100 * (r.probability or 0):.1f}%)" + (f"  [{alts}]" if alts else ""))
    if as_json:
        emit_json({"model": str(model), "provider": clf.provider, "predictions": [r.to_dict() for r in results]})
    if any(r.error is not None for r in results):
        raise typer.Exit(code=1)


# ---------------------------------------------------------------- bench
def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise fail(f"{what} must be comma-separated whole numbers, got {text!r}") from None


@app.command()
@handle_errors
def bench(
    models: Annotated[
        list[Path] | None, typer.Argument(help="ONNX/ORT files to time (default export/model.onnx).")
    ] = None,
    provider: Annotated[str, typer.Option(help="Comma-separated providers, e.g. cpu,cuda.")] = "cpu",
    scenario: Annotated[
        str, typer.Option(help="single-stream (batch 1, p90 headline), offline (large batch, samples/s), or both.")
    ] = "single-stream,offline",
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
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once on a shared session.")] = 1,
    interval_ms: Annotated[float, typer.Option(help="Idle gap between requests (duty-cycle latency).")] = 0.0,
    spinning: Annotated[
        bool | None,
        typer.Option("--spinning/--no-spinning", help="onnxruntime intra-op thread spinning (default: onnxruntime's)."),
    ] = None,
    provider_option: ProviderOptions = None,
    allow_fallback: Annotated[bool, typer.Option(help="Accept nodes placed on another provider.")] = False,
    torch: Annotated[
        bool, typer.Option("--torch", help="Also time the PyTorch model (eager, inference mode) and show ratios.")
    ] = False,
    torch_checkpoint: Annotated[Path, typer.Option(help="Checkpoint for --torch.")] = Path("runs/latest/model.pt"),
    streaming: Annotated[
        Path | None, typer.Option(help="Also time this streaming step model row by row (e.g. export/step.onnx).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every result and the environment to this JSON file.")
    ] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write the results as CSV.")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG: latency distributions and throughput vs batch.")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Keep per-iteration latencies in the JSON.")] = False,
    force: Annotated[bool, typer.Option(help="Allow more threads than cores.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Latency and throughput, MLPerf-style scenarios, with confidence intervals."""
    from rich.console import Console

    from edge_lstm.bench import BenchConfig, run_bench
    from edge_lstm.bench_report import table, to_csv, to_json, to_plot
    from edge_lstm.providers import parse_options

    config = BenchConfig(
        models=tuple(models) if models else ((Path("export/model.onnx"),) if streaming is None else ()),
        providers=tuple(p.strip() for p in provider.split(",") if p.strip()),
        scenarios=tuple(s.strip() for s in scenario.split(",") if s.strip()),
        batches=_int_list(batch, "--batch"),
        threads=_int_list(threads, "--threads") if threads else None,
        warmup=warmup, warmup_s=warmup_time, min_count=min_count, min_seconds=min_time, rounds=rounds,
        concurrency=concurrency, interval_ms=interval_ms, spinning=spinning,
        provider_options=parse_options(provider_option or []), allow_fallback=allow_fallback,
        torch_checkpoint=torch_checkpoint if torch else None, streaming_model=streaming,
        keep_raw=raw or plot is not None, force=force, data_dir=data_dir,
    )  # fmt: skip
    from edge_lstm.fileio import check_writable_dir

    for out, opt in ((json_out, "--json"), (csv_out, "--csv"), (plot, "--plot")):
        if out is not None:  # before minutes of measuring, not after
            check_writable_dir(out.parent, opt)
    err = Console(stderr=True)
    with err.status("benchmarking") as status:
        report = run_bench(config, progress=lambda msg: status.update(msg))
    raw_ms = {
        f"{Path(r['model']).name} {r['provider']} {r['scenario']} b{r['batch']} t{r['threads']}": r["raw_ms"]
        for r in report["results"]
        if "raw_ms" in r
    }
    if not raw:
        for r in report["results"]:
            r.pop("raw_ms", None)
    Console(width=200).print(table(report))
    picked = sorted({f"{r['scenario']} b{r['batch']}: {r['threading']}" for r in report["results"] if "threading" in r})
    for line in picked:  # say what the auto defaults chose
        typer.echo(f"threads  {line}")
    for key, b in report["best"].items():
        shown = f"{b['value']:,.0f} samples/s" if b["metric"] == "samples/s" else f"p50 {b['value'] * 1000:.1f} us"
        typer.echo(f"fastest  {key}: {Path(b['model']).name} on {b['provider']}, {b['threads']} thread(s), {shown}")
    if json_out:
        to_json(report, json_out)
    if csv_out:
        to_csv(report, csv_out)
    if plot:
        to_plot(report, raw_ms, plot)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
