"""Devices: run and measure exported files on the machines they ship to, over SSH, adb or here.

`targets` names devices (a devices file, or URLs), `transport` reaches them (OpenSSH, adb, local),
`remote` installs the deployment side there and runs edge-lstm's own CLI, `fleet` merges the same
job on several devices, `report` shows it. The device runs onnxruntime and numpy, never torch.
"""

from edge_lstm.devices.fleet import FleetReport, bench_on, eval_on
from edge_lstm.devices.targets import Device, add_device, load_devices, remove_device, resolve
from edge_lstm.devices.transport import DeviceError

__all__ = [
    "Device",
    "DeviceError",
    "FleetReport",
    "add_device",
    "bench_on",
    "eval_on",
    "load_devices",
    "remove_device",
    "resolve",
]
