"""What every command shares: the error handler, JSON output, and options declared once.

Library errors (EdgeLstmError) become one line on stderr and exit code 1 (130 for an interrupt);
nothing else is caught, so a real bug still shows its traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from edge_lstm.errors import EdgeLstmError, TrainingInterrupted

F = TypeVar("F", bound=Callable[..., Any])

# --json means the same on every command: one JSON object as the last line of stdout.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line of stdout.")]
DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Folder with the MNIST IDX files (default: $EDGE_LSTM_DATA, the bundled copy, the cache, then a download)."
    ),
]
ProviderOptions = Annotated[
    list[str] | None, typer.Option("--provider-option", help="KEY=VALUE for the provider (repeatable).")
]
AllowFallback = Annotated[bool, typer.Option(help="Accept the LSTM running on another provider than asked.")]
Verbose = Annotated[bool, typer.Option("--verbose", help="Show onnxruntime's own warnings.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


# A module an optional part needs -> what to install. Commands import these only where used, so a
# missing one is found here, whichever command (or library layer) imported it.
_TORCH = (
    "is not installed: training, export, checkpoints and bench --torch need it; install it with "
    "`pip install torch==2.13.0 -e '.[torch]'` (torch==2.13.0 keeps pip from a multi-GB CUDA build)"
)
_SERVE = (
    "is not installed: serving (serve, web --serve, the browser providers) needs the serve extra: "
    "pip install -e '.[serve]'"
)
_RAY = "is not installed: --ray needs the ray extra: pip install -e '.[ray]'"
EXTRAS = {
    "torch": _TORCH,
    "onnxscript": _TORCH,
    **dict.fromkeys(
        (
            "starlette",
            "uvicorn",
            "httptools",
            "prometheus_client",
            "multipart",
            "python_multipart",
            "grpc",
            "tritonclient",
        ),
        _SERVE,
    ),
    "ray": _RAY,
    "pyarrow": _RAY,
    "playwright": "is not installed: the browser providers and the page's tests need the web extra: "
    "pip install -e '.[web]'",
}


def missing_extra(module: str | None) -> str | None:
    """The one line for a missing optional module (None: not an optional part's, a real bug)."""
    root = (module or "").split(".")[0]
    return f"{root} {EXTRAS[root]}" if root in EXTRAS else None


def handle_errors(fn: F) -> F:
    """Turn library errors into one line on stderr and a non-zero exit, with no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeLstmError as e:
            raise fail(str(e), 130 if isinstance(e, TrainingInterrupted) else 1) from None
        except ModuleNotFoundError as e:
            if (hint := missing_extra(e.name)) is not None:
                raise fail(hint) from None
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def emit_json(obj: Any) -> None:
    """One JSON object on the last line of stdout (machine-readable, `--json`)."""
    typer.echo(json.dumps(obj, default=str))


def float_list(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise fail(f"{what} must be comma-separated numbers, got {text!r}") from None


def int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise fail(f"{what} must be comma-separated whole numbers, got {text!r}") from None
