"""`edge-lstm providers` (library: edge_lstm.runtime.providers)."""

from __future__ import annotations

from typing import Annotated

import typer

from edge_lstm.cli.common import JsonFlag, Verbose, emit_json, handle_errors, quiet_ort


@handle_errors
def providers(
    check: Annotated[
        bool, typer.Option("--check", help="Also try a session on each listed provider: does it really load?")
    ] = False,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Execution providers: which this onnxruntime lists (and, with --check, which load), and the package for the others."""
    import onnxruntime as ort

    from edge_lstm.runtime.providers import statuses

    quiet_ort(verbose)
    rows = statuses(check=check)
    typer.echo(f"onnxruntime {ort.__version__} (device: {ort.get_device()})")
    for r in rows:
        if not r.listed:
            mark, note = "no ", f"install: {r.package}"
        elif r.loads is None:
            mark, note = "yes", "listed (not tried; --check tries it)" if r.name != "cpu" else ""
        elif r.loads:
            mark, note = "yes", "loads"
        else:
            mark, note = "no ", f"listed but does not load: {r.detail}"
        typer.echo(f"  {mark}  {r.name:<9} {r.ep:<27} {r.device:<30} {note}".rstrip())
    if as_json:
        emit_json(
            {
                "onnxruntime": ort.__version__,
                "device": ort.get_device(),
                "providers": [r.to_dict() for r in rows],
                "available": [r.ep for r in rows if r.listed and r.loads is not False],
            }
        )
