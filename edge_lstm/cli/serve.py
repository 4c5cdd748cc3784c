"""`edge-lstm serve` (library: edge_lstm.serve)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from edge_lstm import contract
from edge_lstm.cli.common import AllowFallback, JsonFlag, ProviderOptions, Verbose, emit_json, fail, handle_errors
from edge_lstm.cli.serve_elsewhere import ray_scaling, serve_on_ray, serve_on_triton


def repository_of(specs: list[str] | None) -> Path | None:
    """The one argument, when it is a folder: a model repository (NAME/VERSION/model.onnx)."""
    if specs and len(specs) == 1 and Path(specs[0]).is_dir():
        from edge_lstm.serve.repository import is_repository

        if not is_repository(Path(specs[0])):
            raise fail(
                f"{specs[0]} is a folder with no NAME/VERSION/model.onnx in it: give model files, or a model "
                "repository in Triton's layout (export --triton writes one)"
            )
        return Path(specs[0])
    return None


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
            help="MODEL or NAME=MODEL files (default export/model.onnx, and export/step.onnx when present), or "
            "one model repository in Triton's layout: REPO/NAME/VERSION/model.onnx."
        ),
    ] = None,
    versions: Annotated[
        str,
        typer.Option(
            help="A repository's versions to serve: latest, latest:N, all, or specific:V1,V2 (Triton's policy)."
        ),
    ] = "latest",
    poll: Annotated[
        float | None,
        typer.Option(
            help="Look at the repository (or the files) every SECONDS and load what changed, without dropping a "
            "request; without it, the model-control API (POST /v2/repository/models/NAME/load, /unload) does."
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="Serve the first classifier as NAME and the first step model as NAME_step (default: each "
            "file's name up to its first dot; export's model.onnx and step.onnx as edge_lstm and edge_lstm_step)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs --token or --no-auth.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8000,
    grpc_port: Annotated[
        int | None, typer.Option(help="Also serve the protocol's gRPC service on this port (Triton's is 8001).")
    ] = None,
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
    instances: Annotated[int, typer.Option(help="Runner calls in flight at once (per worker).")] = 1,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes sharing the port, each with its own runner and batcher (default: the usable "
            "cores, at most 8; streams stay correct whichever worker a row reaches)."
        ),
    ] = None,
    stream_idle: Annotated[float, typer.Option(help="Seconds after which an idle stream is forgotten.")] = 60.0,
    max_sequences: Annotated[int, typer.Option(help="Live streams at most.")] = 10_000,
    max_body: Annotated[int, typer.Option(help="Bytes of one request at most.")] = 32 * 2**20,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Deploy on a Ray cluster instead: its address (ray://HOST:10001, auto), or 'local' to start one."
        ),
    ] = None,
    replicas: Annotated[int | None, typer.Option(help="--ray: replicas (default 1; none with --autoscale).")] = None,
    autoscale: Annotated[
        str | None, typer.Option(help="--ray: MIN:MAX replicas, scaled by Ray to --target-ongoing requests each.")
    ] = None,
    target_ongoing: Annotated[
        float, typer.Option(help="--ray --autoscale: ongoing requests per replica aimed at.")
    ] = 8.0,
    replica_cpus: Annotated[float, typer.Option(help="--ray: Ray CPUs each replica reserves.")] = 0.5,
    store_shards: Annotated[int, typer.Option(help="--ray: actors holding the streams' states.")] = 1,
    ray_streams: Annotated[
        str,
        typer.Option(
            help="--ray: 'store' (states committed to store actors before each answer: a lost replica loses "
            "nothing) or 'replica' (states only in the replica the edge-lstm-sequence-id header routes to: "
            "no actor call per row, a lost replica loses its streams)."
        ),
    ] = "store",
    ray_proxy: Annotated[
        str,
        typer.Option(
            help="--ray: 'haproxy' (Ray's high-throughput path: HAProxy sends requests straight to the replicas) "
            "or 'python' (Ray's Python proxy and router)."
        ),
    ] = "haproxy",
    triton: Annotated[
        bool,
        typer.Option(
            "--triton",
            help="Serve the files with the real Triton server instead (its Python backend running them with "
            "onnxruntime; gRPC on --grpc-port or --port+1, metrics on --port+2). Needs tritonserver: "
            "pip install --no-deps nvidia-pytriton==0.7.0.",
        ),
    ] = False,
    provider: Annotated[str, typer.Option(help="onnxruntime provider.")] = "cpu",
    provider_option: ProviderOptions = None,
    allow_fallback: AllowFallback = False,
    verbose: Verbose = False,
    as_json: JsonFlag = False,
) -> None:
    """Serve model files over the Open Inference Protocol (Triton/KServe clients work), with dynamic
    batching, stateful streams, a picture endpoint and Prometheus metrics."""
    from edge_lstm.runtime import SessionConfig
    from edge_lstm.runtime.providers import parse_options
    from edge_lstm.serve import ServeConfig, bind, build_app, run
    from edge_lstm.serve.server import url_of

    repository = repository_of(models)
    config = ServeConfig(
        models=() if repository else parse_models(models),
        repository=repository,
        versions=versions,
        poll_s=poll,
        name=name,
        host=host,
        port=port,
        grpc_port=grpc_port,
        token=token or os.environ.get("EDGE_LSTM_TOKEN") or None,
        no_auth=no_auth,
        batching=not no_batching,
        max_batch=max_batch,
        max_delay_us=max_delay_us,
        max_queue=max_queue,
        instances=instances,
        stream_idle_s=stream_idle,
        max_sequences=max_sequences,
        max_body=max_body,
        session=SessionConfig(
            provider=provider,
            provider_options=parse_options(provider_option or []),
            allow_fallback=allow_fallback,
            verbose=verbose,
        ),
    )
    if ray is not None and triton:
        raise fail("--ray and --triton are two different servers: choose one")
    if workers is not None and (ray is not None or triton):
        raise fail("--workers is edge-lstm's own server's; --ray scales with --replicas, --triton with its instances")
    if workers is not None and not 1 <= workers <= 256:
        raise fail(f"--workers must be 1..256, got {workers}")
    if (repository is not None or poll is not None) and (ray is not None or triton):
        raise fail(
            "--ray and --triton serve model files: a repository's versions and --poll are edge-lstm serve's "
            "(docs/serving.md says how Ray Serve and Triton roll out a new version)"
        )
    if triton:
        return serve_on_triton(config, as_json)
    if ray is not None:
        scaling = ray_scaling(replicas, autoscale, target_ongoing, replica_cpus, store_shards, ray_proxy, ray_streams)
        return serve_on_ray(config, ray, scaling, as_json)
    from edge_lstm.serve.workers import default_workers, run_workers

    n = workers or default_workers()
    if n == 1:
        app = build_app(config)  # loads and checks every model before the port is bound
        registry = app.state.registry
    else:
        from edge_lstm.serve.registry import Registry

        registry = Registry(config)  # checked here once, before the port is bound and workers start
    listing = {name: (s.path, s.kind, ",".join(map(str, registry.loaded[name]))) for name, s in registry.latest.items()}
    del registry  # with workers, the sessions are theirs: none held here
    if grpc_port is not None:
        bind(host, grpc_port, "--grpc-port").close()  # a taken gRPC port: this one line, not a failed start-up later
    sock = bind(host, port)
    url = url_of(sock)
    if not config.loopback() and config.token is None:
        typer.echo(f"WARNING: serving {url} to anyone who can reach it, with no token (--no-auth)", err=True)

    def ready(pids: list[int] | None = None) -> None:
        for name, (path, kind, numbers) in listing.items():
            version = f", version {numbers}" if repository is not None else ""
            typer.echo(f"{name}: {path} ({kind}{version}) at {url}/v2/models/{name}")
        if poll is not None:
            typer.echo(f"polling {repository or 'the files'} every {poll:g} s for new versions")
        how = f", {n} workers" if n > 1 else ""
        typer.echo(f"serving {url}{how}  (pictures: POST {url}/predict; metrics: {url}/metrics; Ctrl-C stops)")
        if grpc_port is not None:
            typer.echo(f"gRPC (GRPCInferenceService) on {host}:{grpc_port}")
        if as_json:
            emit_json(
                {
                    "url": url,
                    "models": {name: str(path) for name, (path, _, _) in listing.items()},
                    "workers": pids or [os.getpid()],
                }
            )

    level = "info" if verbose else "warning"
    if n == 1:
        stopped = run(app, sock, log_level=level, on_ready=ready)
    else:
        steps = [name for name, s in listing.items() if s[1] == "streaming-step"]
        stopped = run_workers(config, sock, n, steps, level, ready)
    typer.echo("stopped: every request in flight was answered")
    if stopped.signal == signal.SIGINT:
        raise typer.Exit(130)
