"""`edge-lstm serve --triton`: model files served by the real Triton in one call. The Python-backend
repository is written to a work folder (the user never sees its layout), `tritonserver` started on
the given address with the single server's token policy (Triton's restricted APIs: every API but
health needs `Authorization: Bearer TOKEN`), and stopped by the caller."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from edge_lstm.arch import Arch
from edge_lstm.errors import ConfigError
from edge_lstm.fileio import check_writable_dir
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.server import free_port
from edge_lstm.triton.config import TritonConfig
from edge_lstm.triton.repository import write_python_model
from edge_lstm.triton.server import TritonServer, TritonSettings


@dataclass(frozen=True)
class ServedFile:
    name: str  # the model's name in the repository and in the URLs
    kind: str  # "classifier" or "streaming-step"
    path: Path
    arch: Arch


def files_of(config: ServeConfig) -> list[ServedFile]:
    """The files to serve, with the same checks of every file as `edge-lstm serve`'s."""
    from edge_lstm.serve.models import load

    return [ServedFile(n, s.kind, s.path.resolve(), s.arch) for n, s in load(config).items()]


def batching_of(config: ServeConfig) -> TritonConfig:
    """`serve`'s batching and stream options as the Python-backend repository's settings."""
    return TritonConfig(
        backend="python",
        max_batch_size=config.max_request_batch,
        preferred_batch_size=config.max_batch,
        max_queue_delay_us=config.max_delay_us,
        instances=config.instances,
        stream_max_batch=min(config.max_sequences, 4096),
        stream_idle_us=int(config.stream_idle_s * 1e6),
    )


def ports(host: str, http: int, grpc: int | None) -> tuple[int, int, int]:
    """(HTTP, gRPC, metrics): HTTP as asked (0: a free one), gRPC as asked or the next port (Triton
    always serves both), metrics on the port after it (Triton's metrics have a port of their own)."""
    if http == 0:
        return free_port(host), grpc or free_port(host), free_port(host)
    if http + 2 > 65535:
        raise ConfigError(f"--port {http}: Triton also needs the next two ports for gRPC and metrics")
    return http, grpc or http + 1, http + 2


def start(files: list[ServedFile], settings: TritonSettings, base: TritonConfig, workdir: Path) -> TritonServer:
    """Write `settings.repo` from the files (each model folder checked with Triton's schema), then start
    Triton on it; TritonError (with the log's lines) if it does not become ready."""
    check_writable_dir(settings.repo, "the Triton repository")
    for f in files:
        write_python_model(settings.repo, f.kind, f.path, dataclasses.replace(base, arch=f.arch, name=f.name))
    return TritonServer(settings, workdir).start()
