"""`edge-lstm eval` (library: edge_lstm.runtime.evaluate for model files,
edge_lstm.training.evaluate for checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import DataDir, JsonFlag, Verbose, emit_json, fail, handle_errors


@handle_errors
def eval_(
    model: Annotated[
        Path | None,
        typer.Argument(
            help="A checkpoint (.pt) or an ONNX/ORT model "
            "(default runs/latest/model.pt, or export/step.onnx with --streaming)."
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
    data: Annotated[
        Path | None,
        typer.Option(help="A model of own sequences: its labelled test sequences (.npz or .ts).", metavar="FILE"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    classes: Annotated[bool, typer.Option("--classes", help="With --json: every predicted class too.")] = False,
    on: Annotated[
        str | None,
        typer.Option(
            help="Run on this device (a name or URL; see `edge-lstm device`) and compare its classes with here."
        ),
    ] = None,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Test-set accuracy and per-class accuracy of a checkpoint or an ONNX model."""
    from edge_lstm.runtime import SessionConfig
    from edge_lstm.runtime.evaluate import evaluate, is_model_file, streaming_report

    if limit is not None and limit < 1:
        raise fail(f"--limit must be >= 1, got {limit}")
    session = SessionConfig(provider=provider, verbose=verbose)
    if on is not None:
        if streaming or plot is not None or classes:
            raise fail(
                "--on gives a model file's test-set accuracy and classes there; --streaming, --plot "
                "and --classes run here, without --on"
            )
        return _eval_on(on, model or contract.DEFAULT_MODEL, provider, limit, as_json, data)
    if streaming:
        curve, png = streaming_report(model, plot=plot, data_dir=data_dir, session=session, limit=limit, data=data)
        what = "images" if data is None else "sequences"
        typer.echo(
            f"{curve.model} ({curve.backend}), {curve.n} test {what}: accuracy after k of "
            f"{len(curve.accuracy_after_rows)} rows"
        )
        for line in curve_table(curve.accuracy_after_rows):
            typer.echo(line)
        typer.echo(
            f"90% of the final accuracy after {curve.rows_needed(0.9)} rows, 99% after {curve.rows_needed()}; "
            f"every row: --json or the plot, {png}"
        )
        if as_json:
            emit_json({**curve.to_dict(), "plot": str(png), "rows_for_99pct_of_final": curve.rows_needed()})
        return
    path = model or contract.DEFAULT_CHECKPOINT
    if is_model_file(path):
        report = evaluate(path, session, data_dir=data_dir, limit=limit, keep_classes=classes, data=data)
    else:  # a checkpoint: PyTorch, from the training stage
        from edge_lstm.training.evaluate import evaluate_checkpoint

        report = evaluate_checkpoint(path, data_dir=data_dir, limit=limit, data=data)
    typer.echo(
        f"{report.model} ({report.backend}): accuracy {100 * report.accuracy:.2f}% ({report.correct}/{report.n})"
    )
    typer.echo("per class: " + report.per_class_line())
    if as_json:
        emit_json(report.to_dict())


def _eval_on(device: str, model: Path, provider: str, limit: int | None, as_json: bool, data: Path | None) -> None:
    from edge_lstm.devices.fleet import eval_on

    r = eval_on(device, model, limit, provider=provider, progress=lambda m: typer.echo(m, err=True), data=data)
    if "variants" in r:  # a microcontroller: a line per variant
        _mcu_lines(r)
        if as_json:
            emit_json(r)
        return
    emulated = " (emulated)" if r["device_info"].get("emulated") else ""
    typer.echo(
        f"{r['device']}{emulated}, {r['device_info'].get('architecture')}: accuracy {100 * r['accuracy_there']:.2f}% "
        f"on {r['n']} test cases; here {100 * r['accuracy_here']:.2f}%"
    )
    typer.echo(
        f"same class as this machine for {r['same_class']} of {r['n']} {'images' if data is None else 'sequences'}"
    )
    if as_json:
        emit_json(r)


def _mcu_lines(r: dict[str, object]) -> None:
    """A line per variant: accuracy there and here, agreement, cost, flash and RAM."""
    info = r["device_info"]
    assert isinstance(info, dict) and isinstance(r["variants"], list)
    where = f"{info['cpu']}, QEMU {info['qemu']}" if info["emulated"] else f"{info['board']} on {info['port']}"
    unit = "instructions" if info["emulated"] else "cycles"
    for v in r["variants"]:
        typer.echo(
            f"{r['device']} ({where}), {v['variant']}: accuracy {100 * v['accuracy_there']:.2f}% on {v['n']} test "
            f"cases; here ({v['reference']}) {100 * v['accuracy_here']:.2f}%; the same class for {v['same_class']} "
            f"of {v['n']}, max |logit diff| {v['max_abs_diff']:.1e}; {v[unit + '_per_inference'] / 1e6:.2f} M "
            f"{unit} an inference, flash {v['footprint']['library_flash']:,} B, RAM "
            f"{v['footprint']['library_ram'] + v['stack_peak']:,} B (state and scratch + stack)"
        )


def curve_table(accuracy: list[float], columns: int = 10) -> list[str]:
    """Accuracy after k rows as two lines, at most `columns` values of k (every tenth of the sequence,
    the last row always): 100 lines for a 100-step set said nothing that ten do not."""
    n = len(accuracy)
    ks = sorted({max(1, round(n * i / columns)) for i in range(1, columns + 1)} | {n})
    head = "  rows      " + "".join(f"{k:>8d}" for k in ks)
    values = "  accuracy  " + "".join(f"{100 * accuracy[k - 1]:7.2f}%" for k in ks)
    return [head, values]
