"""The served models: each file opened once through the runtime (contract checked), with its batcher.

A classifier file answers through the dynamic batcher; a step model through the sequence batcher,
the server keeping each stream's state. Loading happens before the server binds its port, so a bad
file is one clean error at start, not a failure on the first request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lstm import contract
from edge_lstm.arch import Arch
from edge_lstm.errors import ConfigError
from edge_lstm.runtime import Classifier, StreamingClassifier
from edge_lstm.runtime.session import peek
from edge_lstm.serve.batcher import DynamicBatcher
from edge_lstm.serve.config import ServeConfig, default_names
from edge_lstm.serve.metrics import Metrics
from edge_lstm.serve.streams import LocalStore, SequenceBatcher, StateStore

StoreFactory = Callable[["Served", ServeConfig], StateStore]  # (model, config) -> where its streams' states live


def served_step(arch: Arch) -> contract.ModelSpec:
    """What a client of the step model sends and gets: rows in, the logits so far out (the state stays here)."""
    return contract.ModelSpec(
        kind="streaming-step",
        inputs=(contract.TensorSpec("row", (contract.BATCH, arch.features)),),
        outputs=(contract.TensorSpec("logits", (contract.BATCH, arch.n_classes)),),
        layout=f"the rows of one sequence, in order; the server keeps {' and '.join(arch.state_names)}",
        arch=arch,
    )


SERVED_STEP = served_step(contract.MNIST)


@dataclass(eq=False)  # compared by identity: one loaded version of one model
class Served:
    name: str
    path: Path
    kind: str  # "classifier" or "streaming-step"
    runner: Any  # Classifier or StreamingClassifier
    # DynamicBatcher (a classifier's, this version's own) or the step model's streams over its versions
    # (VersionedStreams, or peers.RoutedBatcher in front of it), made when the event loop runs
    batcher: Any = None
    version: int = 1
    stamp: tuple[int, int] = (0, 0)  # the file's (size, mtime) when it was opened (repository.Version)

    @property
    def arch(self) -> Arch:
        arch: Arch = self.runner.arch  # from the file
        return arch

    @functools.cached_property
    def spec(self) -> contract.ModelSpec:
        """Built once: every request checks its tensors against it."""
        return contract.classifier_spec(self.arch) if self.kind == "classifier" else served_step(self.arch)


def kind_of(path: Path) -> str:
    """'classifier' or 'streaming-step', from the file's own inputs (the runtime checks the rest)."""
    peeked = peek(path)
    return (contract.kind_for(peeked[0]) if peeked else None) or "classifier"


def named_files(config: ServeConfig) -> list[tuple[str, Path, str]]:
    """(name, file, kind) of every file given (not a repository's), named as `serve` names them."""
    paths = [p for _, p in config.models]
    kinds = [kind_of(p) for p in paths]
    names = [n or d for (n, _), d in zip(config.models, default_names(paths, kinds, config.name), strict=True)]
    if len(set(names)) != len(names):
        raise ConfigError(f"two models would be named the same ({', '.join(names)}); name them: NAME=PATH")
    return list(zip(names, paths, kinds, strict=True))


def open_served(
    name: str, path: Path, kind: str, config: ServeConfig, version: int = 1, stamp: tuple[int, int] = (0, 0)
) -> Served:
    """One version of one model, opened through the runtime (which checks its contract)."""
    if kind == "classifier":
        runner: Any = Classifier(path, config.session)
    else:
        runner = StreamingClassifier(path, 1, config.session)
        if runner.fixed_batch is not None:
            raise ConfigError(
                f"{path}: a step model of a fixed batch; serve one with a batch axis (export --streaming)"
            )
    return Served(name, path, kind, runner, version=version, stamp=stamp)


def load(config: ServeConfig) -> dict[str, Served]:
    """Every file given, opened (version 1): what `serve --ray` and `serve --triton` deploy."""
    return {name: open_served(name, path, kind, config) for name, path, kind in named_files(config)}


def local_store(s: Served, config: ServeConfig) -> StateStore:
    return LocalStore(config.stream_idle_s, config.max_sequences, s.arch)


def start_batcher(s: Served, config: ServeConfig, metrics: Metrics, store: StoreFactory = local_store) -> Any:
    """This version's batcher, started (inside the running event loop): a DynamicBatcher for a
    classifier, a SequenceBatcher with its own stream table for a step model."""
    batcher: Any
    if s.kind == "classifier":

        def observe(batch: int, depth: int, name: str = s.name) -> None:
            metrics.batch.labels(name).observe(batch)
            metrics.queue.labels(name).set(depth)

        batcher = DynamicBatcher(
            s.runner.logits,
            config.max_batch if config.batching else 1,
            config.max_delay_us / 1e6,
            config.max_queue,
            config.instances,
            observe,
            functools.partial(metrics.ran, s.name, s.version),
        )
    else:
        batcher = SequenceBatcher(
            s.runner.step_packed,
            config.stream_max_batch,
            store(s, config),
            metrics.batch.labels(s.name).observe,
            metrics.streams.labels(s.name).set,
            functools.partial(metrics.ran, s.name, s.version),
        )
    batcher.start()
    return batcher


def triton_config(s: Served, config: ServeConfig) -> dict[str, Any]:
    """`GET /v2/models/{name}/config` in Triton's JSON form (perf_analyzer and tritonclient read it)."""

    def io(t: contract.TensorSpec) -> dict[str, Any]:
        dims = [-1 if d == contract.TIME else d for d in t.dims[1:]]  # the batch axis is max_batch_size's
        return {"name": t.name, "data_type": "TYPE_INT32" if t.dtype == "int32" else "TYPE_FP32", "dims": dims}

    out: dict[str, Any] = {
        "name": s.name,
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": config.max_request_batch
        if s.kind == "classifier"
        else (s.arch.steps or config.max_request_batch),
        "input": [io(t) for t in s.spec.inputs],
        "output": [io(t) for t in s.spec.outputs],
    }
    if s.kind == "classifier" and config.batching:
        out["dynamic_batching"] = {"max_queue_delay_microseconds": config.max_delay_us}
    if s.kind == "streaming-step":
        out["sequence_batching"] = {"max_sequence_idle_microseconds": int(config.stream_idle_s * 1e6)}
    return out
