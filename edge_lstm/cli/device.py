"""`edge-lstm device add|remove|list|setup|info` (library: edge_lstm.devices)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edge_lstm.cli.common import JsonFlag, emit_json, handle_errors

DeviceArg = Annotated[str, typer.Argument(help="The device (a name or URL).")]

app = typer.Typer(
    help="Name your devices (SSH, adb, local), install the deployment side there, see what they are.",
    no_args_is_help=True,
)


@app.command("add")
@handle_errors
def add(
    name: Annotated[str, typer.Argument(help="A name for the device.")],
    url: Annotated[
        str, typer.Argument(help="ssh://[user@]host[:port], adb://SERIAL or local; ?dir=PATH, ?python=PATH.")
    ],
) -> None:
    """Remember a device (in the devices file of your config folder)."""
    from edge_lstm.devices import add_device
    from edge_lstm.devices.targets import devices_file

    add_device(name, url)
    typer.echo(f"{name} = {url}  ({devices_file()})")


@app.command("remove")
@handle_errors
def remove(name: Annotated[str, typer.Argument(help="The device's name.")]) -> None:
    """Forget a device."""
    from edge_lstm.devices import remove_device

    remove_device(name)
    typer.echo(f"{name} removed")


@app.command("list")
@handle_errors
def list_(as_json: JsonFlag = False) -> None:
    """The devices you named."""
    from edge_lstm.devices import load_devices

    devices = load_devices()
    for d in devices.values():
        typer.echo(f"{d.name:<16} {d.url}")
    if not devices:
        typer.echo("no devices yet: edge-lstm device add NAME ssh://user@host")
    if as_json:
        emit_json({n: d.url for n, d in devices.items()})


@app.command("setup")
@handle_errors
def setup(
    name: DeviceArg,
    as_json: JsonFlag = False,
) -> None:
    """Install the deployment side there: edge-lstm's wheel from this checkout, onnxruntime, numpy and
    Pillow from the device's package index, in a virtual environment of its own."""
    from edge_lstm.devices.mcu import is_mcu, mcu_info
    from edge_lstm.devices.remote import Remote
    from edge_lstm.devices.targets import resolve

    device = resolve(name)
    if is_mcu(device):  # nothing to install on a microcontroller: eval/bench --on build its firmware
        found = mcu_info(device, check=True)
        _show(found)
        if as_json:
            emit_json(found)
        return
    checkout = Path(__file__).resolve().parents[2]
    info = Remote(device).setup(checkout, progress=lambda m: typer.echo(m, err=True))
    _show(info)
    if as_json:
        emit_json(info)


@app.command("info")
@handle_errors
def info(
    name: DeviceArg,
    as_json: JsonFlag = False,
) -> None:
    """What the device is: CPU, cores, architecture, OS, memory, Python, onnxruntime and its providers."""
    from edge_lstm.devices.fleet import remote_for
    from edge_lstm.devices.mcu import is_mcu, mcu_info
    from edge_lstm.devices.targets import resolve

    device = resolve(name)
    found = mcu_info(device) if is_mcu(device) else remote_for(device).info()
    _show(found)
    if as_json:
        emit_json(found)


def _show(info: dict[str, object]) -> None:
    emulated = "  (EMULATED: timings are the emulator's, not the CPU's)" if info.get("emulated") else ""
    if "board" in info and info.get("emulated"):
        emulated = "  (EMULATED: QEMU counts instructions, not cycles)"
    typer.echo(f"{info['device']}: {info.get('architecture')}{emulated}")
    keys: tuple[str, ...] = ("cpu", "cores", "memory_gb", "os", "python", "onnxruntime", "providers", "edge_lstm")
    if "board" in info:  # a microcontroller
        keys = ("board", "about", "flash_kb", "ram_kb", *(["port"] if info.get("port") else []), "qemu", "arm_gcc")
    for key in keys:
        value = info.get(key)
        typer.echo(f"  {key:<12} {value if value is not None else 'not installed'}")
