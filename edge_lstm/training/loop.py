"""`edge-lstm train`: the training loop, per-epoch checkpoints and resume (recipes in recipes.py).

Determinism: the model is initialised from `seed`, and epoch e is shuffled by a generator seeded
with (seed, e), so a run resumed from the checkpoint of epoch e draws exactly the batches an
uninterrupted run would. With the same seed and thread count, weights are bit-identical.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from edge_lstm.contract import DEFAULT_RUN_DIR
from edge_lstm.data import mnist
from edge_lstm.errors import CheckpointError, TrainingInterrupted
from edge_lstm.fileio import check_writable_dir
from edge_lstm.training import checkpoint
from edge_lstm.training.model import LSTMClassifier, init_tutorial_, to_float
from edge_lstm.training.recipes import TrainConfig
from edge_lstm.training.threads import ThreadTuner, resolve_precision


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI prints, tests may collect."""

    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int) -> None: ...
    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None: ...
    def advance(self, step: int) -> None: ...
    def epoch(self, epoch: int, test_accuracy: float, seconds: float) -> None: ...


class SilentReporter:
    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int) -> None:
        pass

    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None:
        pass

    def advance(self, step: int) -> None:
        pass

    def epoch(self, epoch: int, test_accuracy: float, seconds: float) -> None:
        pass


@dataclass(frozen=True)
class TrainResult:
    test_accuracy: float
    train_seconds: float
    epochs: int
    steps: int
    checkpoint: Path
    run_dir: Path

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoint"], d["run_dir"] = str(self.checkpoint), str(self.run_dir)
        return d


@torch.inference_mode()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 2000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        correct += int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())
    return correct / max(1, len(labels))


def _steps_per_epoch(n_train: int, batch_size: int) -> int:
    return math.ceil(n_train / batch_size)


def _total_steps(config: TrainConfig, n_train: int) -> int:
    by_epochs = config.epochs * _steps_per_epoch(n_train, config.batch_size)
    if config.max_samples is None:
        return by_epochs
    return math.ceil(config.max_samples / config.batch_size)  # the tutorial's `while step*batch < N`


def _make_optimizer(
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


def _compatible_for_resume(saved: dict[str, Any], config: TrainConfig) -> bool:
    # Only the logging interval may differ: everything else changes which weights come out.
    a, b = dict(saved), config.to_dict()
    a.pop("log_every", None)
    b.pop("log_every", None)
    return a == b


def train(
    config: TrainConfig,
    run_dir: Path = DEFAULT_RUN_DIR,
    data_dir: Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train, writing `last.pt` after every epoch and `model.pt`, metrics and a plot at the end."""
    config.validate()
    reporter = reporter or SilentReporter()
    run_dir = Path(run_dir)
    if resume and not (run_dir / "last.pt").is_file():  # before creating the folder or loading any data
        raise CheckpointError(f"checkpoint {run_dir / 'last.pt'} not found: nothing to resume (run without --resume)")
    check_writable_dir(run_dir)
    folder = mnist.locate(data_dir)
    train_split, test_split = mnist.load_split(folder, "train"), mnist.load_split(folder, "test")
    torch_device = torch.device(device)

    n_train = len(train_split) if config.subset is None else min(config.subset, len(train_split))
    n_test = len(test_split) if config.test_subset is None else min(config.test_subset, len(test_split))
    x_train = to_float(train_split.images[:n_train]).to(torch_device)
    y_train = torch.from_numpy(train_split.labels[:n_train].astype(np.int64)).to(torch_device)
    x_test = to_float(test_split.images[:n_test]).to(torch_device)
    y_test = torch.from_numpy(test_split.labels[:n_test].astype(np.int64)).to(torch_device)

    torch.manual_seed(config.seed)
    model = LSTMClassifier(config.model)
    if config.init == "tutorial":
        init_tutorial_(model)
    model.to(torch_device)
    total_steps = _total_steps(config, n_train)
    opt, sched = _make_optimizer(model, config, total_steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    precision = resolve_precision(config.precision, device)
    threads_before = torch.get_num_threads()
    # The thread count may follow the load only where it cannot change the weights (threads.py).
    tuner = ThreadTuner(config.threads, adaptive=precision == "bf16" and device == "cpu")

    last_path, final_path = run_dir / "last.pt", run_dir / "model.pt"
    step, start_epoch, history, elapsed_before = 0, 0, [], 0.0
    if resume:
        state = checkpoint.load(last_path)
        if not _compatible_for_resume(state.get("train_config", {}), config):
            raise CheckpointError(f"{last_path} was written with other training options; resume with the same options")
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        step, start_epoch = int(state["step"]), int(state["epoch"]) + 1
        history, elapsed_before = list(state["history"]), float(state["train_seconds"])

    metrics_path = run_dir / "metrics.jsonl"
    if resume and metrics_path.exists():
        # Drop what the interrupted epoch logged after the checkpoint: it is about to be redone.
        kept = [ln for ln in metrics_path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        metrics_path.write_text("".join(ln + "\n" for ln in kept))
    metrics = open(metrics_path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in `finally`
    reporter.start(total_steps, config, start_epoch)
    t0 = time.perf_counter()
    epoch = start_epoch
    try:
        while step < total_steps:
            model.train()
            order = torch.from_numpy(np.random.default_rng([config.seed, epoch]).permutation(n_train))
            for i in range(0, n_train, config.batch_size):
                if step >= total_steps:
                    break
                started = tuner.start()
                idx = order[i : i + config.batch_size].to(torch_device)
                with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                    if config.anytime > 0:
                        per_step = model.logits_per_step(x_train[idx])  # (B, 28, 10)
                        logits = per_step[:, -1]
                        early = per_step[:, :-1].reshape(-1, per_step.shape[-1])  # (B*27, 10)
                        loss = loss_fn(logits, y_train[idx]) + config.anytime * loss_fn(
                            early, y_train[idx].repeat_interleave(per_step.shape[1] - 1)
                        )
                    else:
                        logits = model(x_train[idx])  # (B, 10)
                        loss = loss_fn(logits, y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                if sched is not None:
                    sched.step()
                step += 1
                if step % config.log_every == 0 or step == 1:
                    # .item() is a device sync point: only on logging steps.
                    acc = float((logits.argmax(1) == y_train[idx]).float().mean())
                    lr = opt.param_groups[0]["lr"]
                    reporter.step(step, float(loss.detach()), acc, lr)
                    metrics.write(
                        json.dumps({"step": step, "loss": float(loss.detach()), "batch_accuracy": acc, "lr": lr}) + "\n"
                    )
                reporter.advance(step)
                tuner.done(started)
            test_acc = accuracy(model, x_test, y_test)  # fp32, as the exported model computes
            seconds = elapsed_before + time.perf_counter() - t0
            history.append({
                "epoch": epoch, "step": step, "test_accuracy": test_acc, "seconds": seconds,
                "precision": precision, "threads": tuner.current, "thread_switches": tuner.switches,
            })  # fmt: skip
            metrics.write(json.dumps(history[-1]) + "\n")
            metrics.flush()
            reporter.epoch(epoch, test_acc, seconds)
            checkpoint.save(last_path, {
                "model_config": config.model.to_dict(), "train_config": config.to_dict(),
                "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {},
                "epoch": epoch, "step": step, "history": history, "train_seconds": seconds,
            })  # fmt: skip
            epoch += 1
    except KeyboardInterrupt:
        done = f"epoch {history[-1]['epoch'] + 1} is in {last_path}" if history else "no epoch finished"
        raise TrainingInterrupted(
            f"interrupted at step {step}; {done}; continue with `edge-lstm train --resume`"
        ) from None
    finally:
        metrics.close()
        torch.set_num_threads(threads_before)

    train_seconds = elapsed_before + time.perf_counter() - t0
    test_acc = history[-1]["test_accuracy"]
    result_metrics = {
        "test_accuracy": test_acc, "n_test": n_test, "train_seconds": train_seconds,
        "epochs": len(history), "steps": step, "history": history,
    }  # fmt: skip
    checkpoint.save(final_path, {
        "model_config": config.model.to_dict(), "train_config": config.to_dict(),
        "state_dict": model.cpu().state_dict(), "metrics": result_metrics,
    })  # fmt: skip
    _plot_curve(metrics_path, run_dir / "training_curve.png")
    return TrainResult(test_acc, train_seconds, len(history), step, final_path, run_dir)


def _plot_curve(metrics_path: Path, png: Path) -> None:
    from edge_lstm.plots import training_curve

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    training_curve(rows, png)
