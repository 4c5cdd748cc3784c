"""What edge-lstm does on a device: install the deployment side, say what the device is, copy model
files (by SHA-256, reused when unchanged) and run the same `bench` and `eval` there, bringing the
JSON back. The device runs edge-lstm's own CLI, as TFLite's benchmark_model runs on a phone: this
side only copies, starts and merges.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lstm.devices.targets import Device
from edge_lstm.devices.transport import DeviceError, transport
from edge_lstm.fileio import sha256_file

SETUP_TIMEOUT_S = 3600  # pip under emulation is slow; a real device is minutes
RUN_TIMEOUT_S = 3600

# Run on the device with its python3 (no edge-lstm needed): what the device is.
PROBE = r"""
import json, os, platform, sys
info = {"architecture": platform.machine(), "os": platform.platform(), "python": platform.python_version()}
try:
    cpuinfo = open("/proc/cpuinfo").read()
except OSError:
    cpuinfo = ""
names = [l.split(":", 1)[1].strip() for l in cpuinfo.splitlines()
         if l.lower().startswith(("model name", "hardware", "cpu model"))]
info["cpu"] = names[0] if names else None
info["cores"] = os.cpu_count()
try:
    mem = [l for l in open("/proc/meminfo") if l.startswith("MemTotal")][0].split()[1]
    info["memory_gb"] = round(int(mem) / 2**20, 1)
except (OSError, IndexError):
    info["memory_gb"] = None
arm = platform.machine() in ("aarch64", "arm64", "armv7l")
x86_flags = "vendor_id" in cpuinfo or " sse2" in cpuinfo  # an Arm program reading an x86 host's /proc
# QEMU's emulated Arm CPU ("max") reports implementer 0x00, which no Arm silicon has (ARM is 0x41,
# Qualcomm 0x51, Apple 0x61, NVIDIA 0x4e, Ampere 0xc0, ...).
qemu_cpu = any(l.split(":")[1].strip() == "0x00" for l in cpuinfo.splitlines() if l.startswith("CPU implementer"))
info["emulated"] = bool(arm and (x86_flags or qemu_cpu))
try:
    import onnxruntime as ort
    info["onnxruntime"] = ort.__version__
    info["providers"] = ort.get_available_providers()
except Exception as e:
    info["onnxruntime"], info["providers"] = None, []
try:
    import edge_lstm
    info["edge_lstm"] = edge_lstm.__version__
except Exception:
    info["edge_lstm"] = None
print(json.dumps(info))
"""


@dataclass
class Remote:
    device: Device

    def __post_init__(self) -> None:
        self.t = transport(self.device)
        self._home: str | None = None

    @property
    def home(self) -> str:
        """The device's folder for edge-lstm, `~` expanded there (paths given to its CLI are quoted)."""
        if self._home is None:
            self._home = self.sh(f"echo {self.device.home}", 60).decode().strip()
        return self._home

    @property
    def python(self) -> str:
        return self.device.python or f"{self.home}/venv/bin/python"

    def sh(self, script: str, timeout: float) -> bytes:
        """A shell line on the device (`~` expanded there)."""
        return self.t.check(["sh", "-c", script], timeout)

    def info(self) -> dict[str, Any]:
        py = (
            self.device.python
            or f"$(test -x {self.home}/venv/bin/python && echo {self.home}/venv/bin/python || echo python3)"
        )
        out = self.sh(f"{py} -c {shlex.quote(PROBE)}", 600)
        info: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        info["device"], info["url"] = self.device.name, self.device.url
        return info

    def require_deployment_side(self) -> None:
        proc = self.t.run(["sh", "-c", f"{self.python} -c 'import edge_lstm, onnxruntime'"], 600)
        if proc.returncode != 0:
            raise DeviceError(
                f"{self.device.name}: the deployment side is not installed there; "
                f"run `edge-lstm device setup {self.device.name}`"
            )

    def setup(self, checkout: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
        """edge-lstm's wheel from this checkout, with onnxruntime, numpy and Pillow from the device's index."""
        if not (checkout / "pyproject.toml").is_file():
            raise DeviceError("device setup builds edge-lstm's wheel from a checkout; run it from the repository")
        with tempfile.TemporaryDirectory() as tmp:
            progress("building edge-lstm's wheel from this checkout")
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp, str(checkout)],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise DeviceError(f"building the wheel failed: {proc.stderr.strip().splitlines()[-1:]}")
            wheel = next(Path(tmp).glob("edge_lstm-*.whl"))
            remote_wheel = f"{self.home}/wheels/{wheel.name}"
            self.sh(f"mkdir -p {self.home}/wheels", 60)
            progress(f"copying {wheel.name} to {self.device.name}")
            self.t.put(wheel, remote_wheel, 600)
        progress(f"installing on {self.device.name} (a virtual environment in {self.home}/venv; this takes a while)")
        self.sh(
            f"python3 -m venv {self.home}/venv && {self.home}/venv/bin/pip install -q --upgrade pip", SETUP_TIMEOUT_S
        )
        self.sh(f"{self.home}/venv/bin/pip install -q {remote_wheel}", SETUP_TIMEOUT_S)
        return self.info()

    def put_file(self, path: Path) -> str:
        """The file's path on the device, copied only when the device does not hold these bytes yet."""
        digest = sha256_file(Path(path))
        remote = f"{self.home}/models/{digest[:16]}/{Path(path).name}"
        check = f"test -f {remote} && sha256sum {remote} 2>/dev/null | cut -d' ' -f1 || true"
        if self.sh(check, 120).decode().strip() != digest:
            self.t.put(Path(path), remote, 600)
        return remote

    def put_data(self) -> str:
        """A folder of MNIST's four files on the device (bench and eval run its test images), each
        copied once (by SHA-256, like the model files) and linked into `HOME/mnist`."""
        from edge_lstm.data import mnist

        links = []
        for f in sorted(mnist.locate(None).glob("*-ubyte*")):
            links.append(f"ln -sf {self.put_file(f)} {self.home}/mnist/{f.name}")
        return (
            self.sh(f"mkdir -p {self.home}/mnist && {' && '.join(links)} && echo {self.home}/mnist", 120)
            .decode()
            .strip()
        )

    def edge_lstm(self, args: list[str], timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        """Run the edge-lstm CLI there with --json; its JSON (the last line of stdout)."""
        self.require_deployment_side()
        line = shlex.join([*args, "--json"])
        proc = self.t.run(["sh", "-c", f"{self.python} -m edge_lstm {line}"], timeout)
        if proc.returncode != 0:
            raise DeviceError(
                f"{self.device.name}: `edge-lstm {args[0]}` failed there: "
                f"{(proc.stderr or proc.stdout).decode(errors='replace').strip().splitlines()[-1:]}"
            )
        result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        return result
