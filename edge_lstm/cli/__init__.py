"""The `edge-lstm` command: a thin typer layer over the library, one module per command.

Each command parses its options, calls one library function and prints. Nothing heavy is imported
at module level, so `edge-lstm --help` is instant and the deployment commands never import torch.

    train -> cli/train.py        eval -> cli/evaluate.py     export -> cli/export.py
    inspect -> cli/inspect.py    predict -> cli/predict.py   providers -> cli/providers.py
    bench -> cli/bench.py        serve -> cli/serve.py       web -> cli/web.py
    device -> cli/device.py
    (shared: cli/common.py)
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from edge_lstm import __version__
from edge_lstm.cli import bench, device, evaluate, export, inspect, predict, providers, serve, train, web

app = typer.Typer(
    name="edge-lstm",
    help="Train, export, run and benchmark an LSTM MNIST classifier for edge devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


app.command("train")(train.train)
app.command("eval")(evaluate.eval_)
app.command("export")(export.export)
app.command("inspect")(inspect.inspect)
app.command("predict")(predict.predict)
app.command("providers")(providers.providers)
app.command("bench")(bench.bench)
app.command("serve")(serve.serve)
app.command("web")(web.web)
app.add_typer(device.app, name="device")


def _flags_take_no_value() -> None:
    """typer 0.29 with click 8.5 shows `<bool>` after every flag in --help, as if it took a value;
    a flag is just present or not, so its help row gets no type column. (Written here, in one place,
    because typer offers no setting for it.)"""
    import typer.core

    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def main() -> None:
    app()
