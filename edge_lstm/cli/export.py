"""`edge-lstm export` (library: edge_lstm.export)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edge_lstm import contract
from edge_lstm.cli.common import DataDir, JsonFlag, emit_json, handle_errors


@handle_errors
def export(
    output: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write the model (default export/model.onnx, or export/step.onnx with --streaming)."
        ),
    ] = None,
    checkpoint: Annotated[Path, typer.Option(help="The checkpoint to export.")] = contract.DEFAULT_CHECKPOINT,
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
    batch: Annotated[
        int | None, typer.Option(help="Fix the batch axis to N (static shapes for NPUs and converters).")
    ] = None,
    mobile: Annotated[
        bool,
        typer.Option("--mobile", help="Also write the phone-NPU graph (LSTM unrolled, fixed batch) and its int8 QDQ."),
    ] = False,
    tflite: Annotated[
        bool,
        typer.Option(
            "--tflite",
            help="Also write TensorFlow Lite files (fp32, int8) via onnx2tf; "
            "needs the \\[tflite] extra (pip install -e '.\\[tflite]').",
        ),
    ] = False,
    triton: Annotated[
        Path | None,
        typer.Option(help="Also write a Triton model repository here (classifier + step model, validated configs)."),
    ] = None,
    triton_backend: Annotated[
        str,
        typer.Option(
            help="--triton: 'onnxruntime' (Triton's onnxruntime backend, its standard container) or 'python' "
            "(a model.py running the file with onnxruntime: the tritonserver of the nvidia-pytriton wheel).",
        ),
    ] = "onnxruntime",
    tflite_micro: Annotated[
        bool,
        typer.Option(
            "--tflite-micro",
            help="Also write TFLite Micro's full-integer LSTM file, its C array and arena (OUTPUT.tflm/), checked with "
            "the tflite-micro wheel; needs the \\[tflite-micro] extra.",
        ),
    ] = False,
    mcu: Annotated[
        Path | None,
        typer.Option(
            help="Also write the C libraries for microcontrollers here (fp32/ and int8/: classify and step, no heap), "
            "each built and checked on this machine.",
            metavar="DIR",
        ),
    ] = None,
    board: Annotated[
        str | None,
        typer.Option(
            help="With --mcu: refuse a library that does not fit this board's flash and RAM (m4, m7, m3, "
            "nucleo-f401re, nucleo-l432kc, nrf52840, nucleo-f746zg, nucleo-h743zi).",
        ),
    ] = None,
    data_dir: DataDir = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="A model of own sequences: the labelled test sequences to verify on (default: its training's).",
            metavar="FILE",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a checkpoint to ONNX (dynamic batch), verified against PyTorch, plus edge variants."""
    from edge_lstm.export import ExportConfig, PartialExport
    from edge_lstm.export import export as run_export

    if output is None:
        output = contract.DEFAULT_STEP_MODEL if streaming else contract.DEFAULT_MODEL
    config = ExportConfig(
        output=output,
        checkpoint=checkpoint,
        opset=opset,
        fuse=fuse,
        streaming=streaming,
        int8=int8,
        fp16=fp16,
        ort=ort,
        verify=verify,
        data_dir=data_dir,
        batch=batch,
        mobile=mobile,
        tflite=tflite,
        triton=triton,
        triton_backend=triton_backend,
        data=data,
        mcu=mcu,
        board=board,
        tflite_micro=tflite_micro,
    )
    try:
        artifacts = run_export(config)
    except PartialExport as e:  # the files that passed are written: show them, then the one line of what failed
        _show(e.artifacts)
        raise
    _show(artifacts)
    if as_json:
        emit_json({"artifacts": [a.to_dict() for a in artifacts]})


def _show(artifacts: list[Any]) -> None:
    """One row per file, its columns aligned whatever the names' lengths (mobile.int8, a long path)."""
    wv = max(len(a.variant) for a in artifacts)
    wp = max(len(str(a.path)) for a in artifacts)
    ws = max(len(f"{a.size_bytes / 1024:.1f}") for a in artifacts)
    for a in artifacts:
        line = f"{a.variant:<{wv}}  {a.path!s:<{wp}}  {a.size_bytes / 1024:>{ws}.1f} KiB"
        if a.variant == "triton":
            line += "  (config.pbtxt parsed with Triton's schema and checked against the model)"
        elif a.verified and a.accuracy is not None and a.agreement is not None:
            worst = max(a.max_abs_diff.values())
            c = a.variant.startswith("mcu-")
            checked = "C built here" if c else "the tflite-micro wheel" if a.variant == "tflite-micro" else "verified"
            line += (
                f"  {checked}: max |diff| {worst:.1e} at batch {'/'.join(a.max_abs_diff)}, "
                f"class agreement {100 * a.agreement:.2f}%, accuracy {100 * a.accuracy:.2f}%"
            )
            if c:  # the folder's size is C text; what a board holds is in its model.json
                import json

                about = json.loads((Path(a.path) / "model.json").read_text())
                line += (
                    f"; step API = classify; {about['flash_data_bytes'] / 1024:.1f} KiB of weights in flash, "
                    f"{about['ram_bytes']:,} B of RAM"
                )
        else:
            line += "  (not verified)"
        typer.echo(line)
        if a.note:
            typer.echo(f"{'':<{wv}}  {a.note}")
