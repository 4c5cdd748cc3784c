"""`edge-lstm web` (library: edge_lstm.web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import JsonFlag, emit_json, handle_errors


@handle_errors
def web(
    out: Annotated[Path, typer.Argument(help="The folder to write the page into.")] = Path("export/web"),
    model: Annotated[Path, typer.Option(help="The classifier to ship.")] = contract.DEFAULT_MODEL,
    step: Annotated[
        Path | None,
        typer.Option(help="The step model for the row-by-row view (default export/step.onnx when it exists)."),
    ] = None,
    no_step: Annotated[bool, typer.Option("--no-step", help="Ship the classifier only.")] = False,
    ort_web: Annotated[
        Path | None,
        typer.Option(
            "--ort-web", help="A folder with onnxruntime-web's dist files (default: the pinned npm download)."
        ),
    ] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Serve the folder on localhost and print the URL.")] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 8000,
    as_json: JsonFlag = False,
) -> None:
    """Build the draw-a-digit page (onnxruntime-web, wasm or WebGPU), optionally serve it."""
    from edge_lstm.web import SiteConfig, build_site
    from edge_lstm.web.site import default_step

    step = None if no_step else (step or default_step())
    folder = build_site(SiteConfig(out=out, model=model, step=step, ort_web=ort_web))
    typer.echo(f"page written to {folder}/ (index.html, the model files, onnxruntime-web)")
    if step is None:
        typer.echo(
            "no step model: the page classifies whole drawings "
            "(`edge-lstm export --streaming` adds the row-by-row view)"
        )
    if as_json and not serve:
        emit_json({"folder": str(folder)})
    if serve:
        import signal

        from edge_lstm.serve import ServeConfig, bind, build_app, run
        from edge_lstm.serve.server import url_of

        # One server: the page at /, and its model files behind the Open Inference Protocol at /v2.
        files = (("", folder / "model.onnx"), *((("", folder / "step.onnx"),) if step is not None else ()))
        app = build_app(ServeConfig(models=files, static=folder, port=port))
        sock = bind("127.0.0.1", port)
        url = url_of(sock) + "/"

        def ready() -> None:
            typer.echo(f"serving {url}  (the page; its models at {url}v2/models; Ctrl-C stops)")
            if as_json:
                emit_json({"folder": str(folder), "url": url})

        stopped = run(app, sock, on_ready=ready)
        typer.echo("stopped")
        if stopped.signal == signal.SIGINT:
            raise typer.Exit(130)
