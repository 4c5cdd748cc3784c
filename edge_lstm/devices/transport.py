"""How to reach a device: run a command there, copy a file there. A thin layer over the tools people
already use (TFLite's benchmark_model over adb, TVM's RPC runner): the system's OpenSSH client (so
~/.ssh/config, keys, agents and jump hosts just work), `adb` where it is installed, or this machine.

Every command has a timeout; a device that cannot be reached is a DeviceError with one line saying
why (ssh's own last line), never a hang.
"""

from __future__ import annotations

import abc
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from edge_lstm.devices.targets import Device
from edge_lstm.errors import EdgeLstmError

CONNECT_TIMEOUT_S = 10


class DeviceError(EdgeLstmError):
    """A device that cannot be reached, lacks the deployment side, or failed a command."""


def _last_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


class Transport(abc.ABC):
    """Run `args` (a list, quoted for the device's shell) with optional stdin; copy files there.
    Each kind of device says how a shell command line reaches it (`_command`) and what its tool's
    failure to reach the device looks like (`_check_reached`)."""

    def __init__(self, device: Device) -> None:
        self.device = device

    @abc.abstractmethod
    def _command(self, remote: str) -> list[str]:
        """The local command line that runs the shell command line `remote` on the device."""

    def run(self, args: list[str], timeout: float, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """The command's result (any exit status); DeviceError when the device cannot be reached."""
        cmd = self._command(shlex.join(args))
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DeviceError(
                f"{self.device.name}: `{shlex.join(args)[:80]}` did not finish in {timeout:.0f} s"
            ) from None
        except FileNotFoundError as e:
            raise DeviceError(f"{self.device.name}: {e.filename} is not installed") from None
        self._check_reached(proc)
        return proc

    @abc.abstractmethod
    def _check_reached(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        """Raise DeviceError when `proc` failed to reach the device (not when the command failed there)."""

    def check(self, args: list[str], timeout: float, stdin: bytes | None = None) -> bytes:
        """stdout of a command that must succeed."""
        proc = self.run(args, timeout, stdin)
        if proc.returncode != 0:
            what = shlex.join(args)[:60]
            raise DeviceError(
                f"{self.device.name}: `{what}` failed (exit {proc.returncode}): "
                f"{_last_line(proc.stderr or proc.stdout)}"
            )
        return proc.stdout

    def put(self, local: Path, remote: str, timeout: float) -> None:
        """Copy a file to the device (through the command channel: no second tool needed)."""
        self.check(
            ["sh", "-c", f"mkdir -p {shlex.quote(os.path.dirname(remote) or '.')} && cat > {shlex.quote(remote)}"],
            timeout,
            stdin=Path(local).read_bytes(),
        )


class Ssh(Transport):
    def _command(self, remote: str) -> list[str]:
        # BatchMode: never ask for a password; LogLevel=ERROR: ssh's notices ("Permanently added ...") are not errors.
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}", "-o", "LogLevel=ERROR"]
        if self.device.ssh_config:  # a config file of its own (the emulated device's, the tests' loopback key)
            cmd += ["-F", self.device.ssh_config]
        if self.device.port:
            cmd += ["-p", str(self.device.port)]
        return [*cmd, self.device.host, remote]

    def _check_reached(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        if proc.returncode == 255:  # ssh's own failure: refused, unknown host, no key, timeout
            raise DeviceError(f"{self.device.name}: cannot reach {self.device.url} ({_last_line(proc.stderr)})")


class Adb(Transport):
    def _command(self, remote: str) -> list[str]:
        if shutil.which("adb") is None:
            raise DeviceError(f"{self.device.name}: adb is not installed (Debian: apt-get install adb)")
        return ["adb", "-s", self.device.serial, "shell", remote]

    def _check_reached(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0 and (
            "device" in err and ("not found" in err or "offline" in err or "no devices" in err)
        ):
            raise DeviceError(f"{self.device.name}: adb has no device {self.device.serial!r} ({_last_line(err)})")


class Local(Transport):
    def _command(self, remote: str) -> list[str]:
        return ["sh", "-c", remote]

    def _check_reached(self, proc: subprocess.CompletedProcess[bytes]) -> None:
        return  # this machine's own shell is always reached: any failure is the command's


KINDS: dict[str, type[Transport]] = {"ssh": Ssh, "adb": Adb, "local": Local}


def transport(device: Device) -> Transport:
    return KINDS[device.kind](device)
