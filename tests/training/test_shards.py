"""The sharded step: the weights depend on the shard count, never on how many threads ran the shards."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from edge_lstm.training import TrainConfig, checkpoint, train
from edge_lstm.training.model import RecurrentClassifier
from edge_lstm.training.shards import ShardedStep
from edge_lstm.training.threads import native_bf16

PRECISIONS = ["fp32", pytest.param("bf16", marks=pytest.mark.skipif(not native_bf16(), reason="no native bf16"))]


def loss_of(model: nn.Module):  # type: ignore[no-untyped-def]
    def fn(
        x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)
        return nn.functional.cross_entropy(logits, y, reduction="sum") / batch, logits

    return fn


def steps(precision: str, shards: int, schedule: list[int]) -> list[torch.Tensor]:
    """Train a few steps with the worker count changing step by step as `schedule` says."""
    before = torch.get_num_threads()
    torch.manual_seed(0)
    model = RecurrentClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    step = ShardedStep(model, shards, bf16=precision == "bf16")
    g = torch.Generator().manual_seed(1)
    try:
        for workers in schedule:
            step.set_workers(workers)
            x, y = torch.rand(96, 28, 28, generator=g), torch.randint(0, 10, (96,), generator=g)
            opt.zero_grad()
            step.backward(x, y, loss_of(model))
            opt.step()
    finally:
        step.close()
        torch.set_num_threads(before)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_weights_do_not_depend_on_the_worker_count(precision: str) -> None:
    one = steps(precision, 2, [1] * 6)
    two = steps(precision, 2, [2] * 6)
    switching = steps(precision, 2, [2, 1, 2, 2, 1, 1])
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(one, two, switching, strict=True))


def test_shards_compute_the_batch_gradient() -> None:
    """The sum of the slices' gradients is the whole batch's gradient (up to rounding)."""
    torch.manual_seed(0)
    model = RecurrentClassifier()
    x, y = torch.rand(50, 28, 28), torch.randint(0, 10, (50,))
    nn.functional.cross_entropy(model(x), y).backward()
    whole = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    step = ShardedStep(model, 3, bf16=False)
    before = torch.get_num_threads()
    try:
        loss, logits = step.backward(x, y, loss_of(model))
    finally:
        torch.set_num_threads(before)
    assert logits.shape == (50, 10) and loss > 0
    assert all(torch.allclose(a, p.grad, atol=1e-6) for a, p in zip(whole, model.parameters(), strict=True))


def test_a_run_does_not_depend_on_its_threads(tmp_path: Path) -> None:
    """fp32 too: --threads 1 and --threads 2 give the same weights (the shard count is what counts),
    and the run records its resolved precision and shard count."""
    base = dict(subset=256, test_subset=100, batch_size=64, epochs=2, precision="fp32", shards=2)
    a = train(TrainConfig(**base, threads=1), tmp_path / "a")  # type: ignore[arg-type]
    b = train(TrainConfig(**base, threads=2), tmp_path / "b")  # type: ignore[arg-type]
    sa, sb = checkpoint.load(a.checkpoint), checkpoint.load(b.checkpoint)
    assert all(torch.equal(sa["state_dict"][k], sb["state_dict"][k]) for k in sa["state_dict"])
    assert sa["train_config"]["shards"] == 2 and sa["train_config"]["precision"] == "fp32"
