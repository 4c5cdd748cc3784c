"""Running with inputs and outputs bound on the provider's device (IO binding), and CUDA graphs.

A CUDA graph replays a captured sequence of kernels on fixed buffers: one launch instead of one
per kernel, which is what batch-1 latency on a GPU is made of (H100: 138 us replayed vs 594 us
launched, ../shared/gpu-2026-11-27). onnxruntime captures one graph per `gpu_graph_id` run option,
and replays it on the SAME input/output addresses with the SAME shapes: it does not check either,
so a graph replayed with another shape gives wrong answers silently. `BoundRunner` therefore keeps
one set of device buffers and one graph id per input shape, copies each request's inputs into
that shape's buffers, and never reuses an id for another shape.

The same code runs without graphs (and on the CPU, where the tests exercise it): the graph id is
then simply not set.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_lstm import contract
from edge_lstm.errors import InputError, ProviderError
from edge_lstm.runtime import providers
from edge_lstm.runtime.session import OpenedModel, SessionConfig, create_session

MAX_GRAPHS = 16  # captured shapes per session: each holds its buffers and graph on the device


@dataclass
class Bound:
    """Device buffers and the binding for one input shape (and its graph id when graphs are on)."""

    graph_id: int | None
    inputs: dict[str, Any]  # name -> OrtValue on the device
    outputs: list[Any]  # OrtValues on the device, in the contract's output order
    binding: Any
    run_options: Any
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one replay of a buffer set at a time


def graph_decision(provider: str, placement: dict[str, dict[str, int]] | None, asked: bool | None) -> tuple[bool, str]:
    """Whether to use CUDA graphs, and why (shown by bench). Safe only on cuda with every node on the GPU:
    a node on the CPU cannot be captured, and onnxruntime then fails at capture time."""
    if asked is False:
        return False, "off (asked)"
    if provider != "cuda":
        if asked:
            raise ProviderError(f"CUDA graphs need --provider cuda, not {provider}")
        return False, f"off (not available on {provider})"
    on_cpu = {op: n for p, ops in (placement or {}).items() if p != "cuda" for op, n in ops.items()}
    if placement is None or on_cpu:
        why = "placement unknown" if placement is None else f"nodes on the CPU: {', '.join(sorted(on_cpu))}"
        if asked:
            raise ProviderError(f"CUDA graphs need every node on the GPU ({why})")
        return False, f"off ({why})"
    return True, "on (every node on the GPU; one graph per input shape)"


def graph_runner(opened: OpenedModel, config: SessionConfig) -> tuple[BoundRunner | None, bool, str]:
    """The CUDA-graph runner for an opened file where graphs are used (see graph_decision), with the
    decision and its reason. Replay needs a session of its own: capture wants enable_cuda_graph, and
    the profiled session that found the placement is spent."""
    used, reason = graph_decision(opened.provider, opened.placement, config.cuda_graph)
    if not used:
        return None, used, reason
    session = create_session(opened.data, opened.name, config, {"enable_cuda_graph": "1"})
    device_id = int(config.provider_options.get("device_id", 0))
    return (
        BoundRunner(session, opened.spec, providers.spec(opened.provider).memory, device_id, graphs=True),
        used,
        reason,
    )


class BoundRunner:
    """Runs a session on device-bound buffers, one buffer set (and CUDA graph) per input shape."""

    def __init__(self, session: Any, spec: contract.ModelSpec, device: str, device_id: int, graphs: bool) -> None:
        self.session, self.spec, self.device, self.device_id, self.graphs = session, spec, device, device_id, graphs
        self._by_shape: dict[tuple[tuple[int, ...], ...], Bound] = {}
        self._lock = threading.Lock()

    @property
    def captured_shapes(self) -> list[tuple[tuple[int, ...], ...]]:
        return list(self._by_shape)

    def _bound(self, feeds: dict[str, np.ndarray]) -> Bound:
        import onnxruntime as ort

        key = tuple(feeds[n].shape for n in self.spec.input_names)
        with self._lock:
            b = self._by_shape.get(key)
            if b is not None:
                return b
            if self.graphs and len(self._by_shape) >= MAX_GRAPHS:
                raise InputError(
                    f"{MAX_GRAPHS} input shapes already captured as CUDA graphs; use fewer batch sizes "
                    "or turn graphs off (cuda_graph=False / --no-cuda-graph)"
                )
            batch = (
                next(iter(feeds.values())).shape[0]
                if self.spec.kind == contract.CLASSIFIER.kind
                else feeds["row"].shape[0]
            )
            # Private copies: on the CPU an OrtValue wraps the numpy array's memory instead of copying it.
            inputs = {
                n: ort.OrtValue.ortvalue_from_numpy(np.array(feeds[n], copy=True), self.device, self.device_id)
                for n in self.spec.input_names
            }
            outputs = [
                ort.OrtValue.ortvalue_from_shape_and_type(
                    list(self.spec.shape(n, batch)), np.float32, self.device, self.device_id
                )
                for n in self.spec.output_names
            ]
            binding = self.session.io_binding()
            for n, v in inputs.items():
                binding.bind_ortvalue_input(n, v)
            for n, v in zip(self.spec.output_names, outputs, strict=True):
                binding.bind_ortvalue_output(n, v)
            run_options = ort.RunOptions()
            graph_id = None
            if self.graphs:
                graph_id = len(self._by_shape) + 1  # ids start at 1: 0 is onnxruntime's own
                run_options.add_run_config_entry("gpu_graph_id", str(graph_id))
            b = Bound(graph_id, inputs, outputs, binding, run_options)
            self._by_shape[key] = b
            return b

    def run(self, feeds: dict[str, np.ndarray], copy_back: Sequence[str] | None = None) -> list[np.ndarray]:
        """Copy feeds into the shape's device buffers, run (replay), copy outputs back to the host."""
        b = self._bound(feeds)
        wanted = list(copy_back) if copy_back is not None else list(self.spec.output_names)
        with b.lock:
            if b.runs:  # the first run's buffers were created from these very feeds
                for n, v in b.inputs.items():
                    v.update_inplace(np.ascontiguousarray(feeds[n]))
            self.session.run_with_iobinding(b.binding, b.run_options)
            b.runs += 1
            # Copies, not views: the next run overwrites these buffers (on the CPU .numpy() is a view).
            return [np.array(b.outputs[self.spec.output_names.index(n)].numpy(), copy=True) for n in wanted]

    def run_bound(self, feeds: dict[str, np.ndarray]) -> Bound:
        """Bind once (first call) and return the Bound, for callers that replay without host copies (bench)."""
        return self._bound(feeds)

    def replay(self, b: Bound) -> None:
        with b.lock:
            self.session.run_with_iobinding(b.binding, b.run_options)
            b.runs += 1
