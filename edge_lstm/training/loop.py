"""`edge-lstm train`: the training loop, per-epoch checkpoints and resume (recipes in recipes.py).

Determinism: the model is initialised from `seed`, epoch e is shuffled by a generator seeded with
(seed, e), and each batch's gradients are summed from fixed shards in a fixed order (shards.py), so a
run resumed from the checkpoint of epoch e draws exactly the batches an uninterrupted run would, and
the same seed and shard count give bit-identical weights whatever the thread count or the machine's
load. A run records its resolved options (resume.py); `--resume` continues with them.
"""

from __future__ import annotations

import json
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
from edge_lstm.training.augment import EpochChanges
from edge_lstm.training.model import LSTMClassifier, init_lstm_, init_tutorial_, to_float
from edge_lstm.training.recipes import TrainConfig
from edge_lstm.training.resume import FINAL, LAST, refuse_differences, resume_command
from edge_lstm.training.setup import averaged_model, loss_fn, make_optimizer, settle, total_steps
from edge_lstm.training.shards import ShardedStep
from edge_lstm.training.threads import ThreadTuner, policy_line


class Reporter(Protocol):
    """What the trainer tells the outside world; the CLI prints, tests may collect."""

    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int, policy: str) -> None: ...
    def step(self, step: int, loss: float, batch_accuracy: float, lr: float) -> None: ...
    def advance(self, step: int) -> None: ...
    def epoch(self, epoch: int, test_accuracy: float, seconds: float) -> None: ...


class SilentReporter:
    def start(self, total_steps: int, config: TrainConfig, resumed_from_epoch: int, policy: str) -> None:
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
    already_finished: bool = False  # --resume of a finished run: nothing was trained or written
    # accuracy on digits that are not MNIST's (data/writing_set.py): overall, per family; None without the set
    real_writing: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoint"], d["run_dir"] = str(self.checkpoint), str(self.run_dir)
        return d


def accuracy(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, step: ShardedStep | None = None, batch: int = 1000
) -> float:
    """Test accuracy in fp32 (as the exported model computes), chunks spread over the step's workers."""
    model.eval()

    def correct(k: int) -> int:
        with torch.inference_mode():  # thread-local: entered in the thread that runs the chunk
            i = k * batch
            return int((model(images[i : i + batch]).argmax(1) == labels[i : i + batch]).sum())

    n = -(-len(labels) // batch)
    counts = step.map(correct, n) if step is not None else [correct(k) for k in range(n)]
    return sum(counts) / max(1, len(labels))


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
    folder = mnist.locate(data_dir)
    train_split, test_split = mnist.load_split(folder, "train"), mnist.load_split(folder, "test")
    torch_device = torch.device(device)

    n_train = len(train_split) if config.subset is None else min(config.subset, len(train_split))
    n_test = len(test_split) if config.test_subset is None else min(config.test_subset, len(test_split))
    n_steps = total_steps(config, n_train)
    if state is not None and int(state["step"]) >= n_steps:
        return _finished(state, config, run_dir, n_test)
    x_train = to_float(train_split.images[:n_train]).to(torch_device)
    y_train = torch.from_numpy(train_split.labels[:n_train].astype(np.int64)).to(torch_device)
    x_test = to_float(test_split.images[:n_test]).to(torch_device)
    y_test = torch.from_numpy(test_split.labels[:n_test].astype(np.int64)).to(torch_device)

    torch.manual_seed(config.seed)
    model = LSTMClassifier(config.model)
    if config.init == "tutorial":
        init_tutorial_(model)
    elif config.init == "lstm":
        init_lstm_(model)
    model.to(torch_device)
    opt, sched = make_optimizer(model, config, n_steps)
    threads_before = torch.get_num_threads()
    assert config.shards is not None  # settled
    sharded = ShardedStep(model, config.shards, bf16=config.precision == "bf16", device=device)
    tuner = ThreadTuner(config.threads if device == "cpu" else 1, limit=config.shards, apply=sharded.set_workers)
    loss_of = loss_fn(model, config)

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
        # Drop what the interrupted epoch logged after the checkpoint: it is about to be redone.
        kept = [ln for ln in metrics_path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        metrics_path.write_text("".join(ln + "\n" for ln in kept))
    metrics = open(metrics_path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in `finally`
    reporter.start(n_steps, config, start_epoch, policy_line(config, device, tuner))
    t0 = time.perf_counter()
    epoch = start_epoch
    try:
        while step < n_steps:
            model.train()
            order = torch.from_numpy(np.random.default_rng([config.seed, epoch]).permutation(n_train))
            changes = (
                EpochChanges(x_train, order, config.batch_size, config.seed, step, sharded.map, config.shards)
                if config.augment == "writing"
                else None
            )
            for k, i in enumerate(range(0, n_train, config.batch_size)):
                if step >= n_steps:
                    break
                # the chunk of changed images is made before the step is timed: the thread tuner
                # compares steps, and a step that also made 16 batches' images would mislead it
                x = None if changes is None else changes.batch(k)
                started = tuner.start()
                idx = order[i : i + config.batch_size].to(torch_device)
                opt.zero_grad(set_to_none=True)
                x = x_train[idx] if x is None else x
                loss, logits = sharded.backward(x, y_train[idx], loss_of)
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                opt.step()
                if averaged is not None:
                    averaged.update_parameters(model)
                if sched is not None:
                    sched.step()
                step += 1
                if step % config.log_every == 0 or step == 1:
                    acc = float((logits.argmax(1) == y_train[idx]).float().mean())  # a device sync point
                    lr = opt.param_groups[0]["lr"]
                    reporter.step(step, loss, acc, lr)
                    metrics.write(json.dumps({"step": step, "loss": loss, "batch_accuracy": acc, "lr": lr}) + "\n")
                reporter.advance(step)
                if changes is None or not changes.fresh:  # a step after a new chunk would mislead the tuner
                    tuner.done(started)
            result_model = averaged.module if averaged is not None else model
            test_acc = accuracy(result_model, x_test, y_test, sharded)
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
            reporter.epoch(epoch, test_acc, seconds)
            checkpoint.save(
                last_path,
                {
                    "model_config": config.model.to_dict(),
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
        done = f"epoch {history[-1]['epoch'] + 1} is in {last_path}" if history else "no epoch finished"
        raise TrainingInterrupted(
            f"interrupted at step {step}; {done}; continue with `{resume_command(run_dir, data_dir, device)}`"
        ) from None
    finally:
        metrics.close()
        sharded.close()
        torch.set_num_threads(threads_before)

    train_seconds = elapsed_before + time.perf_counter() - t0
    final_model = (averaged.module if averaged is not None else model).cpu()
    writing = real_writing(final_model)
    result = _write_final(final_path, config, final_model.state_dict(), history, step, train_seconds, n_test, writing)
    _plot_curve(metrics_path, run_dir / "training_curve.png")
    return result


def real_writing(model: nn.Module) -> dict[str, Any] | None:
    """The model's accuracy on the committed real-writing set (per family, per digit), in fp32 as the
    exported model computes; None where the set is not there (an installed copy without data/)."""
    from edge_lstm.data.writing_set import WRITING_FILE, load_writing_set, score
    from edge_lstm.training.model import logits_of

    if not WRITING_FILE.is_file():
        return None
    ws = load_writing_set(WRITING_FILE)
    return score(ws, logits_of(model, ws.images).argmax(1))


def _write_final(
    path: Path,
    config: TrainConfig,
    weights: dict[str, Any],
    history: list[dict[str, Any]],
    steps: int,
    seconds: float,
    n_test: int,
    writing: dict[str, Any] | None = None,
) -> TrainResult:
    test_acc = history[-1]["test_accuracy"]
    result_metrics = {
        "test_accuracy": test_acc,
        "n_test": n_test,
        "train_seconds": seconds,
        "epochs": len(history),
        "steps": steps,
        "history": history,
        "real_writing": writing,
    }
    checkpoint.save(
        path,
        {
            "model_config": config.model.to_dict(),
            "train_config": config.to_dict(),
            "state_dict": weights,
            "metrics": result_metrics,
        },
    )
    return TrainResult(test_acc, seconds, len(history), steps, path, path.parent, real_writing=writing)


def _kept_weights(state: dict[str, Any]) -> dict[str, Any]:
    """The weights a run keeps: the moving average's (its `module.` entries) when it has one."""
    averaged = state.get("averaged") or {}
    kept = {k.removeprefix("module."): v for k, v in averaged.items() if k.startswith("module.")}
    return kept or state["state_dict"]


def _finished(state: dict[str, Any], config: TrainConfig, run_dir: Path, n_test: int) -> TrainResult:
    """--resume of a run whose every step is done: model.pt is left as it is (its SHA-256 is what
    exported files record); if the run was stopped between its last epoch and writing model.pt,
    model.pt is written from that epoch's checkpoint."""
    final = run_dir / FINAL
    history = list(state["history"])
    if final.is_file():
        m = checkpoint.load(final).get("metrics", {})
        return TrainResult(
            float(m.get("test_accuracy", history[-1]["test_accuracy"])),
            float(m.get("train_seconds", 0.0)),
            int(m.get("epochs", len(history))),
            int(m.get("steps", state["step"])),
            final,
            run_dir,
            already_finished=True,
        )
    return _write_final(
        final, config, _kept_weights(state), history, int(state["step"]), float(state["train_seconds"]), n_test
    )


def _plot_curve(metrics_path: Path, png: Path) -> None:
    from edge_lstm.plots import training_curve

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    training_curve(rows, png)
