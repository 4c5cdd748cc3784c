"""Execution providers shipped as plugin packages for the stock onnxruntime (1.23+): OpenVINO's and
Qualcomm's QNN. The package holds a library that is registered with onnxruntime at run time; sessions
then take the devices it reports (onnxruntime.get_ep_devices) instead of naming the provider: a
provider list silently falls back to the CPU, even once the plugin is registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_lstm.errors import ProviderError

__all__ = ["PLUGINS", "Plugin", "devices_for", "installed"]


@dataclass(frozen=True)
class Plugin:
    """How to register one plugin package and pick its devices."""

    module: str  # the Python package; its get_library_path() is the library to register
    register_as: str  # the registration name: QNN's plugin names its EP after it, so it must be the EP's
    device_option: str | None = None  # the option that picks a device kind, matched against ...
    device_key: str | None = None  # ... this key of each device's ep_metadata; None: every device


PLUGINS = {
    "openvino": Plugin("onnxruntime_ep_openvino", "openvino", "device_type", "ov_device"),
    # QNN's backend is its `backend_type` option (htp: the Hexagon NPU; on x86-64 Linux the wheel's
    # HTP backend is an emulator, which is how this project checks its files there).
    "qnn": Plugin("onnxruntime_qnn", "QNNExecutionProvider"),
}
_registered: set[str] = set()


def installed(name: str, ep: str, have: list[str]) -> str | None:
    """The plugin package to register for provider `name` (onnxruntime's `ep`); None where it is built
    into this onnxruntime (`have`: its providers) or no plugin package for it is installed."""
    import importlib.util

    plugin = PLUGINS.get(name)
    if plugin is None or importlib.util.find_spec(plugin.module) is None:
        return None
    # Once registered, the plugin's EP is listed by get_available_providers() like a built-in one,
    # but sessions still take it through its devices only (a provider list falls back to the CPU).
    if ep in have and name not in _registered:
        return None
    return plugin.module


def devices_for(name: str, ep: str, options: dict[str, Any]) -> list[Any] | None:
    """The plugin's devices for these provider options (registering the library once; the option
    that picks the device kind is taken out of `options`), or None where the provider is built into
    this onnxruntime or no plugin package for it is installed."""
    import importlib

    import onnxruntime as ort

    module = installed(name, ep, ort.get_available_providers())
    if module is None:
        return None
    plugin = PLUGINS[name]
    if name not in _registered:
        try:
            ort.register_execution_provider_library(
                plugin.register_as, importlib.import_module(module).get_library_path()
            )
        except Exception as e:  # onnxruntime's pybind errors, the plugin's FileNotFoundError
            raise ProviderError(f"{name}: the {module} plugin did not load ({str(e).splitlines()[0][:200]})") from None
        _registered.add(name)
    devices = [d for d in ort.get_ep_devices() if d.ep_name == ep]
    wanted, key = "", plugin.device_key
    if plugin.device_option is not None and key is not None:
        wanted = str(options.pop(plugin.device_option, "CPU"))
        devices = [d for d in devices if str(d.ep_metadata.get(key, wanted)).upper() == wanted.upper()]
    if not devices:
        everything = [d for d in ort.get_ep_devices() if d.ep_name == ep]
        found = ", ".join(sorted({str(d.ep_metadata.get(key, "?")) for d in everything}))
        hint = (
            f"use --provider-option {plugin.device_option}=... or another provider"
            if wanted
            else "use another provider"
        )
        raise ProviderError(
            f"{name}: the {module} plugin is installed but reports no {wanted + ' ' if wanted else ''}device "
            f"(devices: {found or 'none'}); {hint}"
        )
    return devices
