"""`edge-lstm providers`: which execution providers this onnxruntime lists, and (--check) which really
load, tried through the runner's own session creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_lstm.errors import EdgeLstmError
from edge_lstm.runtime import plugins, providers
from edge_lstm.runtime.session import SessionConfig, create_session


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    ep: str
    device: str
    package: str
    listed: bool  # in onnxruntime.get_available_providers(): the build knows it
    loads: bool | None = None  # a session on it really ran (None: not checked, see `providers --check`)
    detail: str = ""  # why it did not load

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _probe_model() -> bytes:
    """A one-node float model (Identity) to try a provider with."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def try_load(name: str, verbose: bool = False) -> tuple[bool, str]:
    """Create a session on the provider, exactly as the runner does, and see whether it really is the
    one running (no fallback); the reason when it is not."""
    try:
        create_session(_probe_model(), "the probe model", SessionConfig(provider=name, verbose=verbose))
    except EdgeLstmError as e:
        return False, str(e)
    return True, ""


def statuses(check: bool = False, verbose: bool = False) -> list[ProviderStatus]:
    """Every registered provider: listed by this onnxruntime build, and (check) whether it loads."""
    have = providers.available()
    out = []
    for s in providers.REGISTRY.values():
        listed = s.ep in have or plugins.installed(s.name, s.ep, have) is not None
        loads, detail = (try_load(s.name, verbose) if listed else (False, "")) if check else (None, "")
        out.append(ProviderStatus(s.name, s.ep, s.device, s.package, listed, loads, detail))
    return out
