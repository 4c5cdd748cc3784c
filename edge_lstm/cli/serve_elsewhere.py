"""`edge-lstm serve --ray` and `serve --triton`: the files deployed on Ray Serve or served by the real
Triton. Each gives the CLI the same three things (a URL, a failure to watch for, a stop), so one loop
waits on either until SIGTERM or Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import typer

from edge_lstm.cli.common import emit_json, fail

if TYPE_CHECKING:
    from edge_lstm.cluster.ray_serve import Scaling
    from edge_lstm.serve import ServeConfig


class Deployment(Protocol):
    @property
    def url(self) -> str: ...
    def failure(self) -> str | None: ...  # why it stopped by itself (None: it serves)
    def stop(self) -> object: ...  # stops it in order (what it returns is not read)


@dataclass
class RayDeployment:
    """The application `cluster.ray_serve.deploy` started, and how it is deleted."""

    url: str
    models: list[str]
    shards: int
    local: bool

    def failure(self) -> str | None:
        return None  # Ray Serve replaces what fails by itself

    def stop(self) -> None:
        from edge_lstm.cluster.ray_serve import shutdown

        shutdown(self.models, self.shards, local=self.local)


def catch_stop() -> list[int]:
    """SIGINT and SIGTERM noted in the list the wait loop watches (set again after Ray's ray.init: it puts
    its own SIGTERM handler, a stack dump and exit 134)."""
    stopped: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda s, f: stopped.append(s))
    return stopped


def wait(deployment: Deployment, stopped: list[int]) -> None:
    """Until a stop signal (then stopped in order) or a failure (one line, non-zero exit)."""
    while not stopped:
        why = deployment.failure()
        if why is not None:
            raise fail(why)
        time.sleep(0.2)
    deployment.stop()


def ray_scaling(
    replicas: int | None, autoscale: str | None, target: float, cpus: float, shards: int, proxy: str, streams: str
) -> Scaling:
    from edge_lstm.cluster.ray_serve import Scaling

    lo, hi = 1, 1
    if autoscale is not None:
        try:
            lo, hi = (int(v) for v in autoscale.split(":"))
        except ValueError:
            raise fail(f"--autoscale must be MIN:MAX, got {autoscale!r}") from None
    return Scaling(
        replicas=None if autoscale else (replicas or 1),
        min_replicas=lo,
        max_replicas=hi,
        target_ongoing_requests=target,
        replica_cpus=cpus,
        store_shards=shards,
        proxy=proxy,
        streams=streams,
    )


def serve_on_ray(config: ServeConfig, address: str, scaling: Scaling, as_json: bool) -> None:
    from edge_lstm.cluster.ray_serve import deploy

    catch_stop()
    url, names = deploy(config, scaling, address)
    stopped = catch_stop()
    for name in names:
        typer.echo(f"{name} at {url}/v2/models/{name}")
    how = (
        f"{scaling.replicas} replica(s)"
        if scaling.replicas
        else f"{scaling.min_replicas}-{scaling.max_replicas} replicas (autoscaling)"
    )
    via = "HAProxy ingress" if scaling.proxy == "haproxy" else "Ray's Python proxy"
    typer.echo(f"serving {url} on Ray Serve, {how}, {via}  (Ctrl-C stops and deletes the deployment)")
    if as_json:
        emit_json({"url": url, "models": names, "ray": address})
    wait(RayDeployment(url, names, scaling.store_shards, address == "local"), stopped)
    typer.echo("stopped: the deployment and its stream stores are deleted")
    if stopped[0] == signal.SIGINT:
        raise typer.Exit(130)


def serve_on_triton(config: ServeConfig, as_json: bool) -> None:
    from edge_lstm.triton import TritonSettings
    from edge_lstm.triton.launch import batching_of, files_of, ports, start

    config.validate()
    if config.session.provider != "cpu":
        raise fail(
            "--triton runs the files with onnxruntime's CPU provider in Triton's Python backend: drop --provider"
        )
    files = files_of(config)
    http, grpc, metrics = ports(config.host, config.port, config.grpc_port)
    stopped = catch_stop()
    workdir = Path(tempfile.mkdtemp(prefix="edge-lstm-triton-"))
    server = None
    try:
        settings = TritonSettings(
            repo=workdir / "repository",
            host=config.host,
            http_port=http,
            grpc_port=grpc,
            token=config.token,
            metrics_port=metrics,
        )
        server = start(files, settings, batching_of(config), workdir)
        if not config.loopback() and config.token is None:
            typer.echo(f"WARNING: serving {server.url} to anyone who can reach it, with no token (--no-auth)", err=True)
        for f in files:
            typer.echo(f"{f.name}: {f.path} ({f.kind}) at {server.url}/v2/models/{f.name}")
        typer.echo(
            f"serving {server.url} with Triton (gRPC {config.host}:{grpc}, metrics "
            f"http://{config.host}:{metrics}/metrics; Ctrl-C stops)"
        )
        # Triton owns the port: its 404 for /predict cannot say why, so this line does.
        typer.echo(
            "pictures (/predict) and the page are edge-lstm serve's, not Triton's: run `edge-lstm serve "
            "--port OTHER` beside it for those"
        )
        if as_json:
            emit_json(
                {"url": server.url, "grpc": f"{config.host}:{grpc}", "models": {f.name: str(f.path) for f in files}}
            )
        wait(server, stopped)
        typer.echo("stopped: Triton answered every request in flight and exited")
        shutil.rmtree(workdir, ignore_errors=True)  # kept on a failure: the error names its log
    finally:
        if server is not None:
            server.stop()
    if stopped[0] == signal.SIGINT:
        raise typer.Exit(130)
