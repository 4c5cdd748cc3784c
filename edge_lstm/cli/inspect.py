"""`edge-lstm inspect` (library: edge_lstm.runtime.model_info)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import JsonFlag, Verbose, emit_json, handle_errors


@handle_errors
def inspect(
    model: Annotated[Path, typer.Argument(help="An .onnx or .ort file.")] = contract.DEFAULT_MODEL,
    provider: Annotated[str, typer.Option(help="Show where the nodes are placed on this provider.")] = "cpu",
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Inputs, outputs, opset, operators, size, parameters, metadata and node placement of a model."""
    from edge_lstm.runtime.model_info import format_text, inspect_model

    info = inspect_model(model, provider, verbose=verbose)
    typer.echo(format_text(info))
    if as_json:
        emit_json(info)
