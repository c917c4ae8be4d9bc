"""``dca version``, ``dca doctor`` and ``dca logs``: the installation and the question log."""

from __future__ import annotations

from typing import Annotated

import typer

from dca import __version__
from dca.cli.common import JsonFlag, plain, print_json, user_errors
from dca.config import Paths
from dca.errors import ConfigError


@user_errors
def version(as_json: JsonFlag = False) -> None:
    """Print the dca version."""
    if as_json:
        print_json({"version": __version__})
    else:
        typer.echo(f"dca {__version__}")


@user_errors
def doctor(
    deep: Annotated[bool, typer.Option(help="Rehash every model instead of trusting verification stamps.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check Python, llama.cpp, models, indexes, disk and memory; say how to fix each problem."""
    from dca.doctor import run_checks_here

    checks = run_checks_here(deep=deep)
    ready = all(c.ok for c in checks if c.required)
    if as_json:
        print_json({"ready": ready, "checks": [c.to_json() for c in checks]})
    else:
        for check in checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
            typer.echo(f"[{mark}] {check.name}: {check.detail}")
            if not check.ok and check.fix:
                typer.echo(f"       fix: {check.fix}")
        typer.echo("dca is ready." if ready else "dca is not ready: apply the fixes above.")
    if not ready:
        raise typer.Exit(1)


@user_errors
def logs(
    n: Annotated[int, typer.Option("-n", "--count", help="How many of the latest turns.")] = 10,
    conversation: Annotated[str | None, typer.Option(help="Only this conversation (its id).")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Delete the question log.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The question log: the latest `dca ask` and chat turns (DCA_NO_LOG=1 or --no-log: off)."""
    from dca.logbook import LogBook

    book = LogBook(Paths.resolve())
    if clear:
        removed = book.clear()
        typer.echo(f"deleted the question log ({removed} turns)")
        return
    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    turns = book.recent(n, conversation=conversation)
    if as_json:
        print_json([t.to_json() for t in turns])
        return
    if not turns:
        typer.echo(f"no questions logged yet in {book.path}")
    for t in turns:
        when = t.to_json()["created"]
        extra = f", {t.strategy}" if t.strategy and t.strategy != "direct" else ""
        extra += f", adapter {t.adapter}" if t.adapter else ""
        extra += f", index {t.index}" if t.index else ""
        typer.echo(plain(f"#{t.id} {when} [{t.conversation}] {t.model}{extra}, {t.seconds:.1f} s"))
        typer.echo(plain(f"  Q: {t.question}"))
        answer = " ".join(t.answer.split())
        typer.echo(plain(f"  A: {answer[:300]}{'…' if len(answer) > 300 else ''}"))


def register(app: typer.Typer) -> None:
    app.command("version")(version)
    app.command("doctor")(doctor)
    app.command("logs")(logs)
