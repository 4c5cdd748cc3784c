"""Everything one `edge-lstm serve` needs to know, in one typed object, checked before anything loads.

The batching defaults were chosen by measurement (`python bench/serve.py`, bench/results/serve.json,
2 cores of an AMD EPYC): merging up to 64 images with no added queue delay gave the highest rate
within a 10 ms p99; a delay only adds latency when the server is idle, and under load the queue
fills by itself while the runner is busy.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from edge_lstm import contract
from edge_lstm.errors import ConfigError
from edge_lstm.runtime.session import SessionConfig

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class ServeConfig:
    # (name, model file); an empty name takes the default (default_names); the kind (classifier or
    # step model) is read from the file
    models: tuple[tuple[str, Path], ...]
    # a model repository in Triton's layout instead (NAME/VERSION/model.onnx: repository.py), its versions
    # chosen by `versions` (Triton's version policy: latest, latest:N, all, specific:V1,V2)
    repository: Path | None = None
    versions: str = "latest"
    poll_s: float | None = None  # --poll: look at the repository (or the files) this often; load what changed
    name: str | None = None  # --name: the first classifier's name (its step model's: NAME_step)
    host: str = "127.0.0.1"  # loopback by default: another address must be asked for
    port: int = 8000
    grpc_port: int | None = None  # the protocol's gRPC service too, on this port (Triton's is 8001)
    token: str | None = None  # bearer token every route but health needs (required off loopback)
    no_auth: bool = False  # the explicit opt-out of the token off loopback
    # --- dynamic batching (the classifier); Triton's dynamic_batching knobs
    batching: bool = True  # False: every request its own runner call
    max_batch: int = 64  # images merged into one runner call at most
    max_delay_us: int = 0  # how long a request that finds the runner idle waits for others
    max_queue: int = 4096  # images waiting at most; past it, 503 with Retry-After
    instances: int = 1  # runner calls in flight at once
    # --- streams (the step model); Triton's sequence_batching knobs
    stream_max_batch: int = 256  # rows of different sequences in one step call
    stream_idle_s: float = 60.0  # a sequence idle this long is forgotten
    max_sequences: int = 10_000  # live sequences at most (each holds 1 KiB of state)
    # --- limits of one request
    max_body: int = 32 * 2**20  # bytes of an inference request or a picture
    max_request_batch: int = 4096  # images in one inference request (and never more than max_queue)
    static: Path | None = None  # a folder to serve at / (the browser page)
    session: SessionConfig = field(default_factory=SessionConfig)

    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def validate(self) -> None:
        if not self.models and self.repository is None and self.static is None:
            raise ConfigError("nothing to serve: no model file (export one with `edge-lstm export`)")
        if self.repository is not None and self.models:
            raise ConfigError("serve a model repository or model files, not both (put the files in the repository)")
        names = [n for n, _ in self.models if n] + ([self.name] if self.name else [])
        for n in names:
            if not NAME.match(n):
                raise ConfigError(f"model name {n!r}: use letters, digits, '_', '-' and '.' (at most 64)")
        if len(set(names)) != len(names):
            raise ConfigError(f"two models are named the same: {', '.join(sorted(names))}")
        checks = [
            (0 <= self.port <= 65535, f"--port must be 0..65535, got {self.port}"),
            (
                self.grpc_port is None or 1 <= self.grpc_port <= 65535,
                f"--grpc-port must be 1..65535, got {self.grpc_port}",
            ),
            (1 <= self.max_batch <= 4096, f"--max-batch must be 1..4096, got {self.max_batch}"),
            (0 <= self.max_delay_us <= 1_000_000, f"--max-delay-us must be 0..1000000, got {self.max_delay_us}"),
            (self.max_queue >= self.max_batch, "--max-queue must be at least --max-batch"),
            (1 <= self.instances <= 64, f"--instances must be 1..64, got {self.instances}"),
            (1 <= self.stream_max_batch <= 4096, "--stream-max-batch must be 1..4096"),
            (math.isfinite(self.stream_idle_s) and self.stream_idle_s > 0, "--stream-idle must be > 0 seconds"),
            (self.max_sequences >= 1, "--max-sequences must be >= 1"),
            (self.max_body >= 1024, "--max-body must be at least 1024 bytes"),
            (self.max_request_batch >= 1, "--max-request-batch must be >= 1"),
            (
                self.poll_s is None or (math.isfinite(self.poll_s) and 0.05 <= self.poll_s <= 86400),
                f"--poll must be 0.05..86400 seconds, got {self.poll_s}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.token is not None and len(self.token) < 16:
            raise ConfigError("--token must be at least 16 characters (e.g. `openssl rand -hex 16`)")
        if not self.loopback() and self.token is None and not self.no_auth:
            raise ConfigError(
                f"--host {self.host} is reachable from other machines: give a bearer token (--token or "
                "$EDGE_LSTM_TOKEN), or --no-auth to serve anyone who can reach it"
            )


def default_names(paths: list[Path], kinds: list[str], base: str | None = None) -> list[str]:
    """The file's name up to its first dot (`motions.int8.onnx` is served as motions). export's own file
    names, `model` and `step`, say nothing, so those are served under the names `export --triton` gives
    them (edge_lstm, edge_lstm_step). `base` (serve --name) names the first classifier and, with `_step`,
    the first step model. A name already taken falls back to the file's whole stem."""
    out: list[str] = []
    for path, kind in zip(paths, kinds, strict=True):
        stem = path.name.split(".")[0]
        if base and kind == contract.CLASSIFIER.kind and base not in out:
            name = base
        elif base and kind == contract.STEP.kind and f"{base}_step" not in out:
            name = f"{base}_step"
        elif stem in ("model", "step"):
            name = contract.SERVED_NAMES[kind]
        else:
            name = _safe(stem)
        if name in out:
            name = _safe(path.stem)
        out.append(name)
    return out


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", stem)[:64] or "model"
