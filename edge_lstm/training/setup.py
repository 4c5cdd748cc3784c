"""What one training run is made of, from its config and its data: the pass and step counts, the
optimizer and its schedule, the loss, the weight average, and the options as the run resolves and
records them."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from edge_lstm.training.datasets import TrainingData
from edge_lstm.training.model import RecurrentClassifier
from edge_lstm.training.recipes import MAX_STEPS, MIN_STEPS, TrainConfig
from edge_lstm.training.shards import default_shards
from edge_lstm.training.threads import resolve_precision


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def epochs_for(config: TrainConfig, data: TrainingData) -> tuple[int, int]:
    """(passes, optimizer steps): config.epochs passes (or max_samples samples, the tutorial's
    `while step * batch < N`); with epochs None, the passes that hold WORK time steps of work, as
    MIN_STEPS to MAX_STEPS optimizer steps (recipes.py; config.work is WORK but for --arch auto's candidates)."""
    per_pass = steps_per_epoch(data.n_train, config.batch_size)
    epochs = config.epochs
    if epochs is None:
        mean_length = data.step_count() / max(1, data.n_train) / (data.arch.stride if data.arch.conv else 1)
        steps = min(MAX_STEPS, max(MIN_STEPS, int(config.work / (config.batch_size * mean_length))))
        epochs = max(1, math.ceil(steps / per_pass))
    if config.max_samples is not None:
        steps = math.ceil(config.max_samples / config.batch_size)
        return math.ceil(steps / per_pass), steps
    return epochs, epochs * per_pass


def report_every(epochs: int) -> int:
    """Passes between report points (test accuracy, a checkpoint for --resume): every pass of a run
    of up to 50 (MNIST's), about 20 in a run of hundreds of short passes (small own data)."""
    return 1 if epochs <= 50 else math.ceil(epochs / 20)


def make_optimizer(
    model: nn.Module, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    if config.optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if config.schedule == "constant" or total_steps < 4:  # one-cycle needs a few steps per phase
        return opt, None
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=config.lr, total_steps=total_steps, pct_start=max(config.warmup_frac, 2.0 / total_steps)
    )
    return opt, sched


def averaged_model(model: nn.Module, decay: float) -> Any:
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def settle(config: TrainConfig, device: str, saved: TrainConfig | None = None) -> TrainConfig:
    """The options as this run uses and records them: precision resolved, the shard count chosen
    (a resumed run keeps its own)."""
    shards = config.shards or (saved.shards if saved is not None else None) or default_shards(device)
    precision: Any = resolve_precision(config.precision, device)  # "fp32" or "bf16"
    return replace(config, precision=precision, shards=shards)


def class_weights(y: torch.Tensor, classes: int) -> torch.Tensor:
    """N / (classes x count) per class: config.class_weights (a class absent from training gets 0)."""
    counts = torch.bincount(y.cpu(), minlength=classes).float()
    return torch.where(counts > 0, len(y) / (classes * counts.clamp(min=1)), torch.zeros(()))


def loss_fn(model: RecurrentClassifier, config: TrainConfig, weights: torch.Tensor | None = None) -> Any:
    """(inputs, labels, lengths or None, whole batch) -> (this slice's share of the mean batch loss, final
    logits); `weights` per class (class_weights) or None."""
    # label -1: a non-digit (extra.py): no class to be right about; its loss is the cross-entropy to the
    # uniform answer (outlier exposure), logsumexp(z) - mean(z), weighted by outlier_weight
    ce_sum = nn.CrossEntropyLoss(
        weight=weights, reduction="sum", label_smoothing=config.label_smoothing, ignore_index=-1
    )

    def loss_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = ce_sum(logits, y)
        other = y < 0
        if config.outliers and bool(other.any()):
            z = logits[other].float()
            loss = loss + config.outlier_weight * (torch.logsumexp(z, 1) - z.mean(1)).sum()
        return loss

    def loss_of(
        x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if lengths is not None:  # padded sequences of other lengths, each classified at its own last step
            logits = model(x, lengths)
            return loss_sum(logits, y) / batch, logits
        if config.anytime > 0:
            per_step = model.logits_per_step(x)  # (b, 28, 10)
            logits, rows = per_step[:, -1], per_step.shape[1] - 1
            early = per_step[:, :-1].reshape(-1, per_step.shape[-1])  # (b*27, 10)
            loss = loss_sum(logits, y) + config.anytime * loss_sum(early, y.repeat_interleave(rows)) / rows
        else:
            logits = model(x)  # (b, 10)
            loss = loss_sum(logits, y)
        return loss / batch, logits

    return loss_of
