"""`edge-lstm train` (library: edge_lstm.training)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from edge_lstm import contract
from edge_lstm.cli.common import DataDir, JsonFlag, emit_json, fail, handle_errors
from edge_lstm.errors import EdgeLstmError


class PresetName(str, Enum):
    default = "default"
    seed = "seed"


class AugmentName(str, Enum):
    writing = "writing"
    none = "none"


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
        int | None, typer.Option(help="Passes over the training set (--data: default, enough for 1,500 steps).")
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
            help="writing: half of each batch slanted, rotated, stretched, bolder or finer, blurred, re-contrasted "
            "as real writing differs from MNIST; none: MNIST as it is. [default: writing; seed preset: none]"
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
    hidden: Annotated[int | None, typer.Option(help="With --data: LSTM units. [default: 128]")] = None,
    noise: Annotated[
        float | None,
        typer.Option(help="With --data: std of the noise added to standardised inputs while training. [default: 0.3]"),
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
    """Train the LSTM classifier on MNIST (or on your own sequences, --data); report its test accuracy."""
    if data is not None:
        mnist_only = dict(
            preset=preset,
            subset=subset,
            test_subset=test_subset,
            max_samples=max_samples,
            log_every=log_every,
            anytime=anytime,
            precision=precision,
            shards=shards,
            augment=augment,
            label_smoothing=label_smoothing,
            data_dir=data_dir,
        )
        given_here = [f"--{k.replace('_', '-')}" for k, v in mnist_only.items() if v is not None]
        if given_here or resume or device == Device.cuda:
            raise fail(
                f"{', '.join(given_here or ['--resume/--device cuda'])}: MNIST's options; with --data give "
                "--test-data, --epochs, --batch-size, --lr, --seed, --hidden, --noise, --threads"
            )
        return _train_sequences(
            data,
            test_data,
            out,
            as_json,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            hidden=hidden,
            noise=noise,
            threads=threads,
        )
    if test_data is not None or hidden is not None or noise is not None:
        raise fail("--test-data, --hidden and --noise go with --data (your own sequences)")
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
        preset=preset.value if preset else None,
        augment=augment.value if augment else None,
    )
    # --resume continues the run with the options it recorded; a given option that differs is refused.
    config = run_config(out, given) if resume else override(preset_config(given.pop("preset") or "default"), **given)
    config.validate()  # before importing/initialising anything slow
    dev = _resolve_device(device.value)
    with TrainPrinter(quiet=False) as printer:
        result = run_training(config, run_dir=out, data_dir=data_dir, device=dev, resume=resume, reporter=printer)
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
        f"in {result.train_seconds:.1f} s; checkpoint {result.checkpoint}"
    )
    if result.real_writing is not None:  # digits that are not MNIST's: drawn, photographed, other writers
        from edge_lstm.data.writing_set import summary_line

        typer.echo(summary_line(result.real_writing))
    if as_json:
        emit_json(result.to_dict())


def _train_sequences(data: Path, test_data: Path | None, out: Path, as_json: bool, **given: Any) -> None:
    """`train --data`: sizes, classes and standardisation from the data (edge_lstm.training.sequences)."""
    from edge_lstm.data import sequences
    from edge_lstm.training.sequences import SequenceTrainConfig, train_sequences

    config = SequenceTrainConfig(**{k: v for k, v in given.items() if v is not None})
    config.validate()
    train_set = sequences.load(data)
    if test_data is not None:
        test_set = sequences.load(test_data, train_set.classes)
    else:
        train_set, test_set = sequences.split(train_set, 0.2, config.seed)
        if len(test_set) == 0:
            raise fail(f"{data}: too few sequences per class to hold some out; give --test-data")
    shape = (
        f"{train_set.x.shape[1]}" if train_set.equal_length else f"{train_set.lengths.min()}-{train_set.lengths.max()}"
    )
    typer.echo(
        f"{data}: {len(train_set)} sequences of {shape} steps x {train_set.features} features, "
        f"{len(train_set.classes)} classes ({', '.join(train_set.classes[:8])}"
        f"{', ...' if len(train_set.classes) > 8 else ''}); testing on {len(test_set)}"
    )

    def progress(epoch: int, epochs: int, loss: float) -> None:
        typer.echo(f"epoch {epoch:4d}/{epochs}  loss {loss:.4f}")

    result = train_sequences(config, train_set, test_set, out, progress)
    typer.echo(
        f"test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs} epochs in "
        f"{result.train_seconds:.1f} s; checkpoint {result.checkpoint}"
    )
    if as_json:
        emit_json(result.to_dict())


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EdgeLstmError("--device cuda: this PyTorch build has no CUDA device; use --device cpu")
    return device
