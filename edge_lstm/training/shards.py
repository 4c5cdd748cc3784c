"""One training step's gradients from fixed shards of the batch: the CPU's cores used without the
thread count ending up in the weights.

The batch is cut into `shards` fixed slices (the same cut whatever the machine is doing); each
slice's forward and backward pass runs on ONE intra-op thread, and the slices' gradients are summed
in slice order. So the weights depend on the shard count (recorded in the run, `--shards`), never on
how many worker threads ran the slices: one worker runs them one after another, two run them at once,
and the weights come out bit-identical (tests/training/test_shards.py). That frees the worker count
to follow the machine's load (threads.ThreadTuner) on the fp32 path too, where intra-op threads would
change the last bits of every sum.

Why shards rather than intra-op threads: two intra-op threads meet at an OpenMP barrier after every
kernel of every one of the 28 time steps, and beside a busy process each barrier waits for a partner
the scheduler has parked; two shards meet once per step. Measured by `python bench/train_step.py`
(bench/results/train_step.json), which also shows the shard path alone is no slower.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch
from torch import nn

from edge_lstm.environment import usable_cores

MAX_SHARDS = 4  # a batch of 128 in slices of >= 32 rows: smaller slices lose more to per-kernel overhead

# (inputs, labels, lengths or None, whole batch size) -> (this slice's share of the batch loss, its final logits)
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None, int], tuple[torch.Tensor, torch.Tensor]]
T = TypeVar("T")


def default_shards(device: str) -> int:
    """One shard per usable core, at most MAX_SHARDS; one on CUDA (the GPU parallelises the batch)."""
    return 1 if device != "cpu" else max(1, min(usable_cores(), MAX_SHARDS))


class ShardedStep:
    """Computes the gradients of one batch into the model's `.grad`, slice by slice (see the module
    docstring). `workers` (1..shards) may change between steps without changing the result."""

    def __init__(self, model: nn.Module, shards: int, bf16: bool, device: str = "cpu") -> None:
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shards, self.bf16, self.device = shards, bf16, device
        self.workers = 1
        self._pools: dict[int, ThreadPoolExecutor] = {}
        if device == "cpu":
            torch.set_num_threads(1)  # every slice, and the optimizer step, on one intra-op thread

    def set_workers(self, workers: int) -> None:
        self.workers = max(1, min(workers, self.shards))

    def map(self, fn: Callable[[int], T], n: int) -> list[T]:
        """fn(0..n-1) on the current workers, results in index order (also used for evaluation)."""
        if self.workers == 1 or n == 1:
            return [fn(i) for i in range(n)]
        pool = self._pools.get(self.workers)
        if pool is None:
            pool = self._pools[self.workers] = ThreadPoolExecutor(self.workers, thread_name_prefix="edge-lstm-shard")
        return list(pool.map(fn, range(n)))

    def backward(
        self, images: torch.Tensor, labels: torch.Tensor, loss_of: LossFn, lengths: torch.Tensor | None = None
    ) -> tuple[float, torch.Tensor]:
        """Set every parameter's .grad to d(batch loss)/d(param); return (batch loss, (B, classes) logits).
        lengths (B,): padded sequences' real steps (None: every one has all)."""
        batch = len(labels)
        bounds = [batch * k // self.shards for k in range(self.shards + 1)]
        slices = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]

        def one(i: int) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
            a, b = slices[i]
            # autocast is per thread: entered here, in the thread that runs the slice.
            with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
                loss, logits = loss_of(images[a:b], labels[a:b], None if lengths is None else lengths[a:b], batch)
            return loss.detach(), logits.detach(), torch.autograd.grad(loss, self.params)

        parts = self.map(one, len(slices))
        for k, p in enumerate(self.params):
            grad = parts[0][2][k]
            for part in parts[1:]:  # fixed order: slice 0 + slice 1 + ...
                grad = grad + part[2][k]
            p.grad = grad
        loss = parts[0][0]
        for part in parts[1:]:
            loss = loss + part[0]
        return float(loss), torch.cat([part[1] for part in parts])

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        self._pools.clear()
