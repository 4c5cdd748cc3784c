"""Devices by name: `ssh://user@host[:port]`, `adb://SERIAL`, `local`, and microcontrollers:
`qemu:MACHINE` (QEMU's Cortex-M boards) and `serial://PORT?board=NAME` (devices/mcu.py), kept in a small devices file
in the user's config folder (`edge-lstm device add NAME URL`), or given as a URL where a name goes.

A URL may end in `?dir=PATH` (where edge-lstm keeps its venv and files there; default ~/.edge-lstm),
`?python=PATH` (an interpreter that already has the deployment side, instead of `device setup`'s) and,
for ssh, `?config=PATH` (an ssh_config file of its own), joined with `&`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from edge_lstm.errors import ConfigError
from edge_lstm.fileio import atomic_write_text

NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_DIR = "~/.edge-lstm"


@dataclass(frozen=True)
class Device:
    name: str
    url: str

    @property
    def kind(self) -> str:
        return "local" if self.url.split("?")[0] == "local" else urlsplit(self.url).scheme

    @property
    def host(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.username}@{parts.hostname}" if parts.username else (parts.hostname or "")

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port

    @property
    def serial(self) -> str:
        return urlsplit(self.url).netloc

    def _query(self, key: str) -> str | None:
        values = parse_qs(urlsplit(self.url).query).get(key)
        return values[0] if values else None

    @property
    def home(self) -> str:
        """Where edge-lstm keeps its venv, models and results on the device."""
        return self._query("dir") or DEFAULT_DIR

    @property
    def ssh_config(self) -> str | None:
        """An ssh_config file of its own (`?config=PATH`); default: the user's ~/.ssh/config."""
        return self._query("config")

    @property
    def python(self) -> str | None:
        """An interpreter given in the URL (it already has edge-lstm); None: the one `device setup` made."""
        return self._query("python")


def check_url(url: str) -> str:
    if url.split("?")[0] == "local":
        return url
    parts = urlsplit(url)
    if parts.scheme == "ssh" and parts.hostname:
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise ConfigError(f"{url}: the port is not a number") from None
        return url
    if parts.scheme == "adb" and parts.netloc:
        return url
    if parts.scheme == "qemu" or (parts.scheme == "serial" and parts.path):
        from edge_lstm.devices.mcu import mcu_device

        mcu_device("check", url)  # an unknown board or a missing ?board=: one line now, not at run time
        return url
    raise ConfigError(
        f"{url}: a device is ssh://[user@]host[:port], adb://SERIAL, local, qemu:MACHINE (mps2-an385, mps2-an386, "
        "mps2-an500) or serial:///dev/PORT?board=NAME"
    )


def devices_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "edge-lstm" / "devices.json"


def load_devices() -> dict[str, Device]:
    path = devices_file()
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: Device(name, check_url(url)) for name, url in raw.items()}
    except (ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f"{path}: not a devices file ({e}); fix or remove it") from None


def resolve(name_or_url: str) -> Device:
    """A device from its name in the devices file, or from a URL given directly."""
    if name_or_url == "local" or "://" in name_or_url or name_or_url.startswith("qemu:"):
        return Device(
            name_or_url if name_or_url == "local" else urlsplit(name_or_url).hostname or name_or_url,
            check_url(name_or_url),
        )
    known = load_devices()
    if name_or_url not in known:
        names = ", ".join(known) or "none yet"
        raise ConfigError(
            f"no device named {name_or_url!r} (known: {names}); add it with `edge-lstm device add NAME URL`"
        )
    return known[name_or_url]


def add_device(name: str, url: str) -> Device:
    if not NAME.match(name) or name == "local":
        raise ConfigError(f"device name {name!r}: use letters, digits, '_', '-' and '.' ('local' is taken)")
    device = Device(name, check_url(url))
    devices = {n: d.url for n, d in load_devices().items()}
    devices[name] = url
    atomic_write_text(devices_file(), json.dumps(devices, indent=1) + "\n")
    return device


def remove_device(name: str) -> None:
    devices = {n: d.url for n, d in load_devices().items()}
    if name not in devices:
        raise ConfigError(f"no device named {name!r}")
    del devices[name]
    atomic_write_text(devices_file(), json.dumps(devices, indent=1) + "\n")
