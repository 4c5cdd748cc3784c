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


def _plain_help() -> None:
    """typer 0.29 with click 8.5 writes help in its own notation: `<bool>` after every flag (as if it took
    a value), `<list[str]>` for a repeatable option or a variadic argument, and `{model}` for a required
    argument in the usage line. Here, the conventional one: a flag has no type column, a repeatable
    option shows its element's type, and arguments are MODEL, [MODEL] and INPUTS... (Written here, in
    one place, because typer offers no setting for it.)"""
    import typer.core

    flag_shown = typer.core.TyperOption.display_type_rich
    type_shown = typer.core.TyperOption.display_type  # both parameter kinds inherit it

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else flag_shown(self, ctx)

    def display_type(self: Any, ctx: Any) -> str:
        text = type_shown(self, ctx)
        return "<" + text[len("<list[") : -len("]>")] + ">" if text.startswith("<list[") else text

    def usage_pieces(self: typer.core.TyperArgument, ctx: Any) -> list[str]:
        name = self.display_name_raw.upper()
        return [(name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")]

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    typer.core.TyperOption.display_type = display_type  # type: ignore[method-assign]
    typer.core.TyperArgument.display_type = display_type  # type: ignore[method-assign]
    typer.core.TyperArgument.get_usage_pieces = usage_pieces  # type: ignore[method-assign]

    def error_hint(self: typer.core.TyperArgument, ctx: Any = None) -> str:
        return f"'{self.display_name_raw.upper()}'"  # "Missing argument 'MODEL'", as the usage line names it

    typer.core.TyperArgument.get_error_hint = error_hint  # type: ignore[method-assign,assignment]


def _usage_errors_in_one_line() -> None:
    """A usage error (an unknown option, a missing argument, a value of the wrong type) is one line on
    stderr, like every other error here, instead of typer's usage block and boxed panel; its exit
    status stays click's 2 for usage errors (scripts tell "called wrongly" from "failed", 1)."""
    import typer.rich_utils

    shown = typer.rich_utils.rich_format_error

    def one_line(self: Any) -> None:  # a click.ClickException (typer's own copy of click)
        if self.__class__.__name__ == "NoArgsIsHelpError":  # bare `edge-lstm`: typer shows the help
            return shown(self)
        ctx = getattr(self, "ctx", None)
        see = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
        typer.echo(f"error: {self.format_message().rstrip('.')}{see}", err=True)
        return None

    typer.rich_utils.rich_format_error = one_line


_plain_help()
_usage_errors_in_one_line()


def main() -> None:
    app()
