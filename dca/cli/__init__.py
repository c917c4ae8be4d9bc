"""The ``dca`` command line: flags -> config -> library call. The only package that prints or exits.

One module per command group (ask and chat, index, eval, train, serve, models and pull, and
the installation's version, doctor and logs); common.py holds what they share; this module
is the Typer app that gathers them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from dca import __version__
from dca.cli import ask, eval, index, models, serve, system, train
from dca.cli.common import OneLineErrors

app = typer.Typer(
    cls=OneLineErrors,
    rich_markup_mode=None,  # help text is plain: "[n]" stays "[n]"
    help="dca: answer questions with a small local model, your documents, and test-time reasoning.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_flag(value: bool) -> None:
    if value:
        typer.echo(f"dca {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version_flag, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """dca: answer questions with a small local model, your documents, and test-time reasoning."""


ask.register(app)
app.add_typer(index.index_app, name="index")
models.register(app)
eval.register(app)
app.add_typer(train.train_app, name="train")
serve.register(app)
system.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
