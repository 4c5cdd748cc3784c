"""`edge-lstm serve` (library: edge_lstm.serve)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import AllowFallback, JsonFlag, ProviderOptions, Verbose, emit_json, fail, handle_errors

SERVE_EXTRA = "serving needs the serve extra: pip install -e '.[serve]' (uvicorn, Starlette, prometheus-client)"


def parse_models(specs: list[str] | None) -> tuple[tuple[str, Path], ...]:
    """MODEL or NAME=MODEL; none: export/model.onnx, plus export/step.onnx when it exists."""
    if not specs:
        found = [
            contract.DEFAULT_MODEL,
            *([contract.DEFAULT_STEP_MODEL] if contract.DEFAULT_STEP_MODEL.is_file() else []),
        ]
        return tuple(("", p) for p in found)
    out = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        out.append((name, Path(path)) if sep and not Path(spec).exists() else ("", Path(spec)))
    return tuple(out)


@handle_errors
def serve(
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="MODEL or NAME=MODEL files (default export/model.onnx, and export/step.onnx when present)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs --token or --no-auth.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8000,
    token: Annotated[
        str | None, typer.Option(help="Bearer token every route but /v2/health needs (default $EDGE_LSTM_TOKEN).")
    ] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Serve a non-loopback --host without a token.")] = False,
    max_batch: Annotated[int, typer.Option(help="Images merged into one runner call at most.")] = 64,
    max_delay_us: Annotated[
        int, typer.Option(help="How long a request that finds the runner idle waits for others.")
    ] = 0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Every request its own runner call.")] = False,
    max_queue: Annotated[int, typer.Option(help="Images waiting at most; past it, 503 with Retry-After.")] = 4096,
    instances: Annotated[int, typer.Option(help="Runner calls in flight at once.")] = 1,
    stream_idle: Annotated[float, typer.Option(help="Seconds after which an idle stream is forgotten.")] = 60.0,
    max_sequences: Annotated[int, typer.Option(help="Live streams at most.")] = 10_000,
    max_body: Annotated[int, typer.Option(help="Bytes of one request at most.")] = 32 * 2**20,
    provider: Annotated[str, typer.Option(help="onnxruntime provider.")] = "cpu",
    provider_option: ProviderOptions = None,
    allow_fallback: AllowFallback = False,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Serve model files over the Open Inference Protocol (Triton/KServe clients work), with dynamic
    batching, stateful streams, a picture endpoint and Prometheus metrics."""
    try:
        from edge_lstm.serve import ServeConfig, bind, build_app, run
        from edge_lstm.serve.server import url_of
    except ImportError:
        raise fail(SERVE_EXTRA) from None
    from edge_lstm.runtime import SessionConfig
    from edge_lstm.runtime.providers import parse_options

    config = ServeConfig(
        models=parse_models(models), host=host, port=port, token=token or os.environ.get("EDGE_LSTM_TOKEN") or None,
        no_auth=no_auth, batching=not no_batching, max_batch=max_batch, max_delay_us=max_delay_us,
        max_queue=max_queue, instances=instances, stream_idle_s=stream_idle, max_sequences=max_sequences,
        max_body=max_body,
        session=SessionConfig(provider=provider, provider_options=parse_options(provider_option or []),
                              allow_fallback=allow_fallback, verbose=verbose),
    )  # fmt: skip
    app = build_app(config)  # loads and checks every model before the port is bound
    sock = bind(host, port)
    url = url_of(sock)
    if not config.loopback() and config.token is None:
        typer.echo(f"WARNING: serving {url} to anyone who can reach it, with no token (--no-auth)", err=True)

    def ready() -> None:
        for name, s in app.state.served.items():
            typer.echo(f"{name}: {s.path} ({s.kind}) at {url}/v2/models/{name}")
        typer.echo(f"serving {url}  (pictures: POST {url}/predict; metrics: {url}/metrics; Ctrl-C stops)")
        if as_json:
            emit_json({"url": url, "models": {n: str(s.path) for n, s in app.state.served.items()}})

    stopped = run(app, sock, log_level="info" if verbose else "warning", on_ready=ready)
    typer.echo("stopped: every request in flight was answered")
    if stopped.signal == signal.SIGINT:
        raise typer.Exit(130)
