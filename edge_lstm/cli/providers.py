"""`edge-lstm providers` (library: edge_lstm.runtime.provider_check; the browser rows: edge_lstm.web.browser)."""

from __future__ import annotations

from typing import Annotated

import typer

from edge_lstm.cli.common import JsonFlag, Verbose, emit_json, handle_errors


@handle_errors
def providers(
    check: Annotated[
        bool, typer.Option("--check", help="Also try a session on each listed provider: does it really load?")
    ] = False,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Execution providers: which this onnxruntime lists (and, with --check, which load), and the package
    for the others."""
    import onnxruntime as ort

    from edge_lstm.runtime.provider_check import statuses
    from edge_lstm.web.browser import BROWSER_PROVIDERS, browser_status

    rows = statuses(check=check, verbose=verbose)
    browser_ok, browser_why = browser_status()
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
        typer.echo(f"  {mark}  {r.name:<14} {r.ep:<27} {r.device:<30} {note}".rstrip())
    typer.echo("in a browser (bench only: onnxruntime-web in headless Chromium, single-stream):")
    for name in BROWSER_PROVIDERS:
        engine = f"onnxruntime-web {name.split('-')[1]}"
        typer.echo(
            f"  {'yes' if browser_ok else 'no '}  {name:<14} {engine:<27} "
            f"{'the page in Chromium':<30} {browser_why}".rstrip()
        )
    if as_json:
        emit_json(
            {
                "onnxruntime": ort.__version__,
                "device": ort.get_device(),
                "providers": [r.to_dict() for r in rows],
                "available": [r.ep for r in rows if r.listed and r.loads is not False],
                "browser": {name: {"available": browser_ok, "detail": browser_why} for name in BROWSER_PROVIDERS},
            }
        )
