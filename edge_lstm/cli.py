"""The `edge-lstm` command: a thin typer layer over the library.

Each command parses its options, calls one library function and prints. Library errors
(EdgeLstmError) become one line on stderr and exit code 1; nothing heavy is imported at module
level, so `edge-lstm --help` is instant and the deployment commands never import torch.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from edge_lstm import __version__
from edge_lstm.errors import EdgeLstmError

app = typer.Typer(
    name="edge-lstm",
    help="Train, export, run and benchmark an LSTM MNIST classifier for edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and a non-zero exit, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeLstmError as e:
            code = 130 if type(e).__name__ == "TrainingInterrupted" else 1
            raise fail(str(e), code) from None
        except ModuleNotFoundError as e:
            if e.name in ("torch", "onnxscript"):
                raise fail(
                    f"{e.name} is not installed: training and export need it; "
                    "install with `pip install 'edge-lstm[torch]'`"
                ) from None
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    """One JSON object on the last line of stdout (machine-readable, `--json`)."""
    typer.echo(json.dumps(obj, default=str))


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"edge-lstm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


# ---------------------------------------------------------------- train
class PresetName(str, Enum):
    default = "default"
    seed = "seed"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@app.command()
@handle_errors
def train(
    preset: Annotated[
        PresetName,
        typer.Option(help="default: our recipe (>= 99% test accuracy); seed: the TensorFlow tutorial, exactly."),
    ] = PresetName.default,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training set.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", "-b")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="(Peak) learning rate.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives bit-identical weights on CPU.")
    ] = None,
    subset: Annotated[int | None, typer.Option(help="Train on the first N training images only (quick runs).")] = None,
    test_subset: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    max_samples: Annotated[int | None, typer.Option(help="Stop after this many training samples.")] = None,
    log_every: Annotated[int | None, typer.Option(help="Steps between loss/accuracy lines.")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder with the MNIST IDX files (default: $EDGE_LSTM_DATA, the bundled copy, the cache, then a download)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Run folder: model.pt, last.pt, metrics.jsonl, training_curve.png.")] = Path(
        "runs/latest"
    ),
    device: Annotated[Device, typer.Option(help="Where to train.")] = Device.auto,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from OUT/last.pt.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Train the LSTM classifier on MNIST."""
    from edge_lstm.cli_reporting import TrainPrinter
    from edge_lstm.train import override, preset_config
    from edge_lstm.train import train as run_training

    config = override(
        preset_config(preset.value), epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        subset=subset, test_subset=test_subset, max_samples=max_samples, log_every=log_every,
    )  # fmt: skip
    config.validate()  # before importing/initialising anything slow
    dev = _resolve_device(device.value)
    with TrainPrinter(quiet=False) as printer:
        result = run_training(config, run_dir=out, data_dir=data_dir, device=dev, resume=resume, reporter=printer)
    typer.echo(
        f"test accuracy {100 * result.test_accuracy:.2f}% after {result.epochs} epochs / {result.steps} steps "
        f"in {result.train_seconds:.1f} s; checkpoint {result.checkpoint}"
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


# ---------------------------------------------------------------- eval
@app.command("eval")
@handle_errors
def eval_(
    model: Annotated[Path, typer.Argument(help="A checkpoint (.pt) or an ONNX/ORT model file.")] = Path(
        "runs/latest/model.pt"
    ),
    provider: Annotated[str, typer.Option(help="onnxruntime provider for .onnx files (cpu, cuda, ...).")] = "cpu",
    data_dir: Annotated[Path | None, typer.Option(help="Folder with the MNIST IDX files.")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate on the first N test images only.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Test-set accuracy and per-class accuracy of a checkpoint or an ONNX model."""
    from edge_lstm.evaluate import evaluate

    if limit is not None and limit < 1:
        raise fail(f"--limit must be >= 1, got {limit}")
    report = evaluate(model, data_dir=data_dir, provider=provider, limit=limit)
    typer.echo(
        f"{report.model} ({report.backend}): accuracy {100 * report.accuracy:.2f}% ({report.correct}/{report.n})"
    )
    typer.echo("per class: " + "  ".join(f"{k}:{100 * a:.1f}%" for k, a in enumerate(report.per_class)))
    if as_json:
        emit_json(report.to_dict())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
