"""`edge-lstm train`: one training loop for every data set and cell (recipes in recipes.py, the data
in datasets.py, what a finished run writes in finish.py).

Determinism: the model is initialised from `seed`, pass e is shuffled by a generator seeded with
(seed, e), each batch's augmentation is drawn from a generator seeded with (seed, step), and each
batch's gradients are summed from fixed shards in a fixed order (shards.py), so a run resumed from
any checkpoint draws exactly the batches an uninterrupted run would, and the same seed and shard count
give bit-identical weights whatever the thread count or the machine's load. A run records its
resolved options (resume.py); `--resume` continues with them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from edge_lstm.contract import DEFAULT_RUN_DIR
from edge_lstm.errors import CheckpointError, ConfigError, TrainingInterrupted
from edge_lstm.fileio import check_writable_dir
from edge_lstm.training import checkpoint
from edge_lstm.training.augment import EpochChanges, batch_generator
from edge_lstm.training.datasets import load_training_data
from edge_lstm.training.extra import extra_for
from edge_lstm.training.finish import TrainResult, finished, write_final
from edge_lstm.training.model import RecurrentClassifier, init_recurrent_, init_tutorial_
from edge_lstm.training.recipes import TrainConfig
from edge_lstm.training.resume import FINAL, LAST, refuse_differences, resume_command
from edge_lstm.training.sensor_augment import sensor_augment
from edge_lstm.training.setup import (
    averaged_model,
    class_weights,
    epochs_for,
    loss_fn,
    make_optimizer,
    report_every,
    settle,
)
from edge_lstm.training.shards import ShardedStep
from edge_lstm.training.threads import ThreadTuner, policy_line


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI prints, tests may collect."""

    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int, policy: str, data: str) -> None: ...
    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None: ...
    def advance(self, step: int) -> None: ...
    def epoch(self, epoch: int, epochs: int, test_accuracy: float, seconds: float) -> None: ...


class SilentReporter:
    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int, policy: str, data: str) -> None:
        pass

    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def epoch(self, epoch: int, epochs: int, test_accuracy: float, seconds: float) -> None:
        pass


def accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    lengths: torch.Tensor | None = None,
    step: ShardedStep | None = None,
    batch: int = 1000,
) -> float:
    """Test accuracy in fp32 (as the exported model computes), chunks spread over the step's workers."""
    model.eval()

    def correct(k: int) -> int:
        with torch.inference_mode():  # thread-local: entered in the thread that runs the chunk
            i = k * batch
            lb = None if lengths is None else lengths[i : i + batch]
            return int((model(x[i : i + batch], lb).argmax(1) == y[i : i + batch]).sum())

    n = -(-len(y) // batch)
    counts = step.map(correct, n) if step is not None else [correct(k) for k in range(n)]
    return sum(counts) / max(1, len(y))


def train(
    config: TrainConfig,
    run_dir: Path = DEFAULT_RUN_DIR,
    data_dir: Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train, writing `last.pt` at every report point and `model.pt`, metrics and a plot at the end."""
    config.validate()
    if config.arch == "auto":
        raise ConfigError("--arch auto is settled before training: training.choose.choose(config) says what to train")
    reporter = reporter or SilentReporter()
    run_dir = Path(run_dir)
    last_path, final_path = run_dir / LAST, run_dir / FINAL
    state: dict[str, Any] | None = None
    if resume:  # before creating the folder or loading any data
        if not last_path.is_file():
            raise CheckpointError(f"checkpoint {last_path} not found: nothing to resume (run without --resume)")
        state = checkpoint.load(last_path)
        saved = TrainConfig.from_dict(state.get("train_config", {}))
        config = settle(config, device, saved)
        refuse_differences(last_path, saved, config.to_dict())
    else:
        config = settle(config, device)
    check_writable_dir(run_dir)
    data = load_training_data(config, data_dir)
    epochs, n_steps = epochs_for(config, data)
    if state is not None and int(state["step"]) >= n_steps:
        return finished(state, config, data, run_dir)
    dev = torch.device(device)
    x, y = data.x.to(dev), data.y.to(dev)
    lengths = None if data.lengths is None else data.lengths.to(dev)
    x_test, y_test = data.x_test.to(dev), data.y_test.to(dev)
    lengths_test = None if data.lengths_test is None else data.lengths_test.to(dev)
    mask = None if lengths is None else (torch.arange(x.shape[1], device=dev)[None, :] < lengths[:, None])[..., None]

    torch.manual_seed(config.seed)
    model = RecurrentClassifier(data.arch, standardised=data.mean is not None)
    if config.init == "tutorial":
        init_tutorial_(model)
    elif config.init == "recurrent":
        init_recurrent_(model)
    model.to(dev)
    opt, sched = make_optimizer(model, config, n_steps)
    threads_before = torch.get_num_threads()
    assert config.shards is not None  # settled
    sharded = ShardedStep(model, config.shards, bf16=config.precision == "bf16", device=device)
    tuner = ThreadTuner(config.threads if device == "cpu" else 1, limit=config.shards, apply=sharded.set_workers)
    weights = class_weights(data.y, data.arch.n_classes).to(dev) if config.class_weights else None
    loss_of = loss_fn(model, config, weights)
    extra = extra_for(config, dev)
    every = report_every(epochs)

    # The weights evaluated and written: an exponential moving average of the trained ones (config.ema),
    # or the trained ones themselves.
    averaged = averaged_model(model, config.ema)
    step, start_epoch, history, elapsed_before = 0, 0, [], 0.0
    if state is not None:
        model.load_state_dict(state["state_dict"])
        if averaged is not None:
            averaged.load_state_dict(state["averaged"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        step, start_epoch = int(state["step"]), int(state["epoch"]) + 1
        history, elapsed_before = list(state["history"]), float(state["train_seconds"])

    metrics_path = run_dir / "metrics.jsonl"
    if resume and metrics_path.exists():
        # Drop what the interrupted pass logged after the checkpoint: it is about to be redone.
        kept = [ln for ln in metrics_path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        metrics_path.write_text("".join(ln + "\n" for ln in kept))
    metrics = open(metrics_path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in `finally`
    what = f"{data.arch.describe()} on {data.description}"
    reporter.start(n_steps, config, start_epoch, policy_line(config, device, tuner), what)
    t0 = time.perf_counter()
    epoch = start_epoch
    n = data.n_train
    try:
        while step < n_steps:
            model.train()
            order = torch.from_numpy(np.random.default_rng([config.seed, epoch]).permutation(n))
            changes = (
                EpochChanges(x, order, config.batch_size, config.seed, step, sharded.map, config.shards)
                if config.augment == "writing"
                else None
            )
            for k, i in enumerate(range(0, n, config.batch_size)):
                if step >= n_steps:
                    break
                # the chunk of changed images is made before the step is timed: the thread tuner
                # compares steps, and a step that also made 16 batches' images would mislead it
                xb = None if changes is None else changes.batch(k)
                started = tuner.start()
                idx = order[i : i + config.batch_size].to(dev)
                opt.zero_grad(set_to_none=True)
                xb = x[idx] if xb is None else xb
                lb = None if lengths is None else lengths[idx]
                if config.augment == "sensor":  # drawn for the whole batch: any shard count
                    xb = sensor_augment(xb, lb, batch_generator(config.seed, step), config.noise).to(dev)
                elif config.augment == "noise" and config.noise > 0:
                    noise = torch.randn(xb.shape, generator=batch_generator(config.seed, step)).to(dev)
                    xb = xb + config.noise * noise * (1.0 if mask is None else mask[idx])
                yb = y[idx]
                if extra is not None:  # typeset digits and non-digits after MNIST's (extra.py)
                    xb, yb = extra.add(xb, yb, step)
                loss, logits = sharded.backward(xb, yb, loss_of, lb)
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                if sched is not None:
                    sched.step()
                step += 1
                if step % config.log_every == 0 or step == 1:
                    acc = float((logits[: len(idx)].argmax(1) == y[idx]).float().mean())  # a device sync point
                    lr = opt.param_groups[0]["lr"]
                    reporter.step(step, loss, acc, lr)
                    metrics.write(json.dumps({"step": step, "loss": loss, "batch_accuracy": acc, "lr": lr}) + "\n")
                reporter.advance(step)
                if changes is None or not changes.fresh:  # a step after a new chunk would mislead the tuner
                    tuner.done(started)
            if (epoch + 1) % every == 0 or step >= n_steps:  # a report point: evaluate, keep a checkpoint
                result_model = averaged.module if averaged is not None else model
                test_acc = accuracy(result_model, x_test, y_test, lengths_test, sharded)
                seconds = elapsed_before + time.perf_counter() - t0
                history.append(
                    {
                        "epoch": epoch,
                        "step": step,
                        "test_accuracy": test_acc,
                        "seconds": seconds,
                        "precision": config.precision,
                        "shards": config.shards,
                        "threads": tuner.current,
                        "thread_switches": tuner.switches,
                    }
                )
                metrics.write(json.dumps(history[-1]) + "\n")
                metrics.flush()
                reporter.epoch(epoch, epochs, test_acc, seconds)
                checkpoint.save(
                    last_path,
                    {
                        "arch": data.arch.to_dict(),
                        "train_config": config.to_dict(),
                        "state_dict": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else {},
                        "averaged": averaged.state_dict() if averaged is not None else {},
                        "epoch": epoch,
                        "step": step,
                        "history": history,
                        "train_seconds": seconds,
                    },
                )
            epoch += 1
    except KeyboardInterrupt:
        if not history and not last_path.is_file():  # nothing kept: a resume would have nothing to start from
            raise TrainingInterrupted(
                f"interrupted at step {step}, before the first epoch ended: nothing was kept; run the command again"
            ) from None
        done = f"epoch {history[-1]['epoch'] + 1} is in {last_path}" if history else f"{last_path} is kept"
        raise TrainingInterrupted(
            f"interrupted at step {step}; {done}; continue with `{resume_command(run_dir, data_dir, device)}`"
        ) from None
    finally:
        metrics.close()
        sharded.close()
        torch.set_num_threads(threads_before)

    train_seconds = elapsed_before + time.perf_counter() - t0
    final_model = (averaged.module if averaged is not None else model).cpu()
    return write_final(final_path, config, data, final_model, history, step, train_seconds, metrics_path)
