"""The real Triton Inference Server (`tritonserver`) started and stopped from Python, no container.

Where the binary comes from: the nvidia-pytriton wheel ships Triton's own `tritonserver` (C++ HTTP and
gRPC front ends, dynamic and sequence batchers) with Triton's Python backend, but no onnxruntime
backend; a `tritonserver` on PATH (Triton's container, a source build) is used when the wheel is absent.
Three traps of the wheel's binary, each handled here (../shared/notes/triton.md has how they show):
1. the Python backend's stub must sit in the backend folder: the backend is copied to a work folder
   with the stub for this Python version beside it;
2. the stub links libpython3.X.so: this interpreter's own library folder goes first on
   LD_LIBRARY_PATH, or the system's libpython runs with this build's standard library;
3. the stub's interpreter ignores PYTHONPATH and virtual environments: the backend model.py files
   put EDGE_LSTM_SITE_PACKAGES (this environment's site-packages) on sys.path themselves.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from edge_lstm.errors import EdgeLstmError

INSTALL_HINT = (
    "install Triton's server with: pip install --no-deps nvidia-pytriton==0.7.0 "
    "(its binary only; the package pins numpy<2 for a library edge-lstm does not use), or put tritonserver on PATH"
)
# Every API but health needs the token when one is set (the single server's policy, as Triton allows it).
RESTRICTED_HTTP = "inference,model-config,model-repository,metadata,shared-memory,statistics,trace,logging"
RESTRICTED_GRPC = RESTRICTED_HTTP
LOAD_FAILURES = ("failed to load", "Failed to preinitialize", "failed to initialize", "Traceback")


class TritonError(EdgeLstmError):
    """tritonserver is missing, did not start, or refused the repository."""


@dataclass(frozen=True)
class Install:
    binary: Path
    backends: Path  # a folder holding python/ (libtriton_python.so, triton_python_backend_utils.py)
    stub: Path | None  # the wheel's triton_python_backend_stub for this Python (a PATH install has its own)
    libs: Path | None  # the wheel's bundled shared libraries


def find() -> Install:
    """The wheel's tritonserver, else one on PATH; TritonError with the install line if neither."""
    spec = importlib.util.find_spec("pytriton")  # the folder only: importing pytriton would pull its library
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
        binary = root / "bin" / "tritonserver"
        stub = root / "python_backend_stubs" / f"{sys.version_info.major}.{sys.version_info.minor}"
        stub /= "triton_python_backend_stub"
        if binary.is_file():
            if not stub.is_file():
                raise TritonError(
                    f"the nvidia-pytriton wheel has no Python backend stub for Python "
                    f"{sys.version_info.major}.{sys.version_info.minor}: run Triton from its container"
                )
            return Install(binary, root / "backends", stub, root.parent.parent / "nvidia_pytriton.libs")
    on_path = shutil.which("tritonserver")
    if on_path is not None:
        return Install(Path(on_path), Path("/opt/tritonserver/backends"), None, None)
    raise TritonError(f"no tritonserver found: {INSTALL_HINT}")


def _stop_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, however it dies (SIGKILL,
    the OOM killer), so that no Triton outlives `serve --triton` (Linux's PR_SET_PDEATHSIG; elsewhere
    nothing). Triton then stops its Python backend's stubs itself."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


@dataclass(frozen=True)
class TritonSettings:
    repo: Path
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    token: str | None = None
    metrics_port: int | None = None  # None: no metrics endpoint
    start_timeout_s: float = 60.0
    # On SIGTERM Triton finishes the requests in flight, then waits for clients to close their
    # connections: at most this long (Triton's default is 30 s; idle keep-alive clients would hold it).
    exit_timeout_s: int = 5
    # Triton's --model-control-mode: "none" (the repository as it was at start), "explicit" (every model
    # loaded at start, then its load/unload API), or "poll" (the repository looked at every poll_s)
    model_control: str = "none"
    poll_s: int = 5


@dataclass
class TritonServer:
    """`tritonserver` running `settings.repo`; a context manager that stops it (SIGTERM: Triton finishes
    the requests in flight, then exits)."""

    settings: TritonSettings
    workdir: Path
    install: Install = field(default_factory=find)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "tritonserver.log"

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.settings.http_port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        s, backends = self.settings, self.install.backends
        if self.install.stub is not None:  # trap 1: the stub beside the backend, in a folder of our own
            backends = self.workdir / "backends"
            shutil.rmtree(backends, ignore_errors=True)
            shutil.copytree(self.install.backends / "python", backends / "python")
            shutil.copy2(self.install.stub, backends / "python" / "triton_python_backend_stub")
        args = [
            str(self.install.binary),
            f"--model-repository={s.repo.resolve()}",
            f"--backend-directory={backends}",
            f"--http-address={s.host}",
            f"--http-port={s.http_port}",
            f"--grpc-address={s.host}",
            f"--grpc-port={s.grpc_port}",
            f"--allow-metrics={'true' if s.metrics_port is not None else 'false'}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--log-verbose=0",
            f"--exit-timeout-secs={s.exit_timeout_s}",
        ]
        if s.metrics_port is not None:
            args += [f"--metrics-address={s.host}", f"--metrics-port={s.metrics_port}"]
        if s.model_control == "explicit":
            args += ["--model-control-mode=explicit", "--load-model=*"]
        elif s.model_control == "poll":
            args += ["--model-control-mode=poll", f"--repository-poll-secs={s.poll_s}"]
        if s.token is not None:  # Triton's restricted APIs: a header that must carry this exact value
            args += [
                f"--http-restricted-api={RESTRICTED_HTTP}:authorization=Bearer {s.token}",
                f"--grpc-restricted-protocol={RESTRICTED_GRPC}:authorization=Bearer {s.token}",
            ]
        env = dict(os.environ)
        libs = [sysconfig.get_config_var("LIBDIR") or "", str(self.install.libs or "")]  # trap 2
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [*libs, env.get("LD_LIBRARY_PATH", "")] if p)
        env["EDGE_LSTM_SITE_PACKAGES"] = os.pathsep.join(site.getsitepackages())  # trap 3
        return args, env

    def start(self) -> TritonServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args, env = self.command()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
                preexec_fn=_stop_with_parent,
            )
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonError(f"tritonserver exited ({self.process.returncode}) while starting: {self.why()}")
            if self.ready():
                return self
            if self.failed():  # a model that did not load: Triton stays up, never ready
                self.stop()
                raise TritonError(f"tritonserver did not load the repository {self.settings.repo}: {self.why()}")
            time.sleep(0.2)
        self.stop()
        raise TritonError(f"tritonserver was not ready within {self.settings.start_timeout_s:g} s: {self.why()}")

    def ready(self) -> bool:
        with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/v2/health/ready", timeout=1) as r:
            return bool(r.status == 200)
        return False

    def failure(self) -> str | None:
        """Why it stopped by itself (None while it runs): what `serve --triton` watches for."""
        if self.process is not None and self.process.poll() is None:
            return None
        return f"tritonserver stopped by itself: {self.why()}"

    def failed(self) -> bool:
        return any(mark in ln for ln in self._lines() for mark in LOAD_FAILURES)

    def _lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        # Without a GPU Triton logs CUDA lines as errors and goes on: they are not why anything failed.
        return [ln.strip() for ln in text.splitlines() if ln.strip() and "CUDA" not in ln and "Cuda" not in ln]

    def why(self) -> str:
        """The log's error lines (the last ones when none says error), for a one-line answer."""
        lines = self._lines()
        errors = [ln for ln in lines if ln.startswith("E") or any(m in ln for m in LOAD_FAILURES)]
        return " | ".join((errors or lines)[-3:]) + f" (log: {self.log})"

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM: Triton finishes what is in flight, then exits (killed after timeout_s)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> TritonServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
