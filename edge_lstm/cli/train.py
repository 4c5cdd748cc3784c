"""`edge-lstm train` (library: edge_lstm.training)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from edge_lstm import contract
from edge_lstm.cli.common import DataDir, JsonFlag, emit_json, fail, handle_errors
from edge_lstm.errors import EdgeLstmError, TrainingInterrupted


class PresetName(str, Enum):
    default = "default"
    seed = "seed"


class AugmentName(str, Enum):
    writing = "writing"
    sensor = "sensor"
    noise = "noise"
    none = "none"


class ArchName(str, Enum):
    auto = "auto"
    lstm = "lstm"
    conv_lstm = "conv-lstm"
    lstm_fcn = "lstm-fcn"


class CellName(str, Enum):
    lstm = "lstm"
    gru = "gru"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@handle_errors
def train(
    preset: Annotated[
        PresetName | None,
        typer.Option(
            help="default: our recipe (>= 99% test accuracy); seed: the TensorFlow tutorial, exactly. "
            "[default: default]"
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over the training set (--data: default, what 12 M time steps of the recurrent layers take, "
            "300-3,000 steps)."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b", help="Images per training step.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="(Peak) learning rate.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives bit-identical weights on CPU.")
    ] = None,
    subset: Annotated[int | None, typer.Option(help="Train on the first N training images only (quick runs).")] = None,
    test_subset: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Stop after this many training samples.")] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between loss/accuracy lines.")] = None,
    anytime: Annotated[
        float | None,
        typer.Option(
            help="Weight of a loss on the answers after every earlier row (streaming 'anytime' prediction); 0 = off."
        ),
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="auto (bf16 where the CPU has it natively), fp32 or bf16 (forward pass).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(help="Worker threads (default: up to one per shard, fewer while the machine is busy)."),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            help="Fixed slices of each batch, one thread each; the weights depend on it (default: cores, <= 4)."
        ),
    ] = None,
    augment: Annotated[
        AugmentName | None,
        typer.Option(
            help="writing (MNIST): half of each batch slanted, rotated, stretched, bolder or finer, blurred, "
            "re-contrasted as real writing differs from MNIST; sensor (--data): time and magnitude warps, window "
            "slices and noise (--noise); noise (--data): the noise alone; none: the data as it is. "
            "[default: writing; seed preset: none; --data: noise, with a convolutional --arch: sensor]"
        ),
    ] = None,
    label_smoothing: Annotated[float | None, typer.Option(help="Label smoothing of the loss (0 = off).")] = None,
    data_dir: DataDir = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Train on your own labelled sequences instead of MNIST: a .npz (x (N, T, F), y, optional "
            "lengths) or a UEA/UCR .ts file.",
            metavar="FILE",
        ),
    ] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(help="With --data: the test sequences (default: a stratified 20% of --data).", metavar="FILE"),
    ] = None,
    cell: Annotated[
        CellName | None,
        typer.Option(help="The recurrent cell: lstm, or gru (3 gates, not 4: 25% fewer weights). [default: lstm]"),
    ] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked recurrent layers, 1-3. [default: 1]")] = None,
    arch: Annotated[
        ArchName | None,
        typer.Option(
            help="With --data: lstm (the input projection, then the recurrent layers), or conv-lstm (two causal "
            "convolutions of 64 channels, 8 steps wide, first; for sequences over ~140 steps the first is strided "
            "so the recurrent layers run ~100 steps: faster, and often better on long series), or lstm-fcn (three "
            "convolutions, 64-128-64, whose channels averaged over the sequence join the LSTM's state in the head, "
            "after LSTM-FCN); the convolutional ones have no --mobile, --tflite or --mcu yet. auto: lstm-fcn with "
            "`sensor` or no augmentation, or lstm, whichever reads best a fifth of the training sequences held out "
            "(each trained on the rest with a third of the work), then that one on all of them. [default: lstm]"
        ),
    ] = None,
    hidden: Annotated[int | None, typer.Option(help="Units per recurrent layer. [default: 128]")] = None,
    noise: Annotated[
        float | None,
        typer.Option(help="With --data: std of the noise added to standardised inputs while training. [default: 0.3]"),
    ] = None,
    class_weights: Annotated[
        bool | None,
        typer.Option(
            "--class-weights/--no-class-weights",
            help="Weigh each class's loss by how rare it is in training. [default: on with --data, off for MNIST]",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Run folder: model.pt, last.pt, metrics.jsonl, training_curve.png.")
    ] = contract.DEFAULT_RUN_DIR,
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    resume: Annotated[
        bool, typer.Option(help="Continue the interrupted run in OUT with its own recorded options.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the classifier on MNIST (or on your own sequences, --data); report its test accuracy."""
    if data is not None and data_dir is not None:
        raise fail("--data-dir is MNIST's folder; with --data give the sequences' files (--data, --test-data)")
    if preset == PresetName.seed and data is not None:
        raise fail("--preset seed is the TensorFlow tutorial's MNIST recipe; drop it with --data")
    from edge_lstm.cli.progress import TrainPrinter
    from edge_lstm.training import override, preset_config
    from edge_lstm.training import train as run_training
    from edge_lstm.training.resume import run_config

    given: dict[str, Any] = dict(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        subset=subset,
        test_subset=test_subset,
        max_samples=max_samples,
        log_every=log_every,
        anytime=anytime,
        precision=precision,
        threads=threads,
        shards=shards,
        label_smoothing=label_smoothing,
        augment=augment.value if augment else None,
        data=str(data) if data is not None else None,
        test_data=str(test_data) if test_data is not None else None,
        cell=cell.value if cell else None,
        layers=layers,
        hidden=hidden,
        noise=noise,
        class_weights=class_weights,
        arch=arch.value if arch else None,
    )
    # --resume continues the run with the options it recorded; a given option that differs is refused.
    if resume:
        config = run_config(out, given)
    else:
        name = "sequences" if data is not None else (preset.value if preset else "default")
        config = override(preset_config(name), **given)  # type: ignore[arg-type]
    config.validate()  # before importing/initialising anything slow
    dev = _resolve_device(device.value)
    with TrainPrinter(quiet=False) as printer, stop_signals() as stopped:
        try:
            if config.arch == "auto":
                from edge_lstm.training.choose import choose

                config, choice = choose(config, out, dev, printer, printer.say)
                printer.say(choice.line())
            result = run_training(config, run_dir=out, data_dir=data_dir, device=dev, resume=resume, reporter=printer)
        except TrainingInterrupted as e:  # Ctrl-C or SIGTERM: the line that says how to resume
            raise fail(str(e), 128 + stopped[0] if stopped else 130) from None
    if result.already_finished:
        typer.echo(
            f"{out} is a finished run ({result.epochs} epochs, {result.steps} steps): nothing to resume; "
            f"{result.checkpoint} is unchanged (test accuracy {100 * result.test_accuracy:.2f}%)"
        )
        if as_json:
            emit_json(result.to_dict())
        return
    typer.echo(
        f"test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs} epochs / {result.steps} steps "
        f"in {result.train_seconds:.1f} s ({result.arch}); checkpoint {result.checkpoint}"
    )
    if result.real_writing is not None:  # digits that are not MNIST's: drawn, photographed, other writers
        from edge_lstm.data.writing_set import summary_line

        typer.echo(summary_line(result.real_writing))
    if as_json:
        emit_json(result.to_dict())


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """SIGTERM (a scheduler's or `kill`'s stop) ends training as Ctrl-C does: the last finished epoch is
    kept and the resume command printed; the exit status is 128 + the signal, the shell's convention."""
    stopped: list[int] = []

    def stop(sig: int, frame: object) -> None:
        stopped.append(sig)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, stop)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, before)


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EdgeLstmError("--device cuda: this PyTorch build has no CUDA device; use --device cpu")
    return device
