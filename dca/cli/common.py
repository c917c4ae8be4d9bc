"""Helpers shared by the command modules: one-line errors, JSON output, progress bars."""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar

import typer
from typer.core import TyperGroup

from dca.choices import (
    BACKENDS,
    DTYPES,
    EVAL_SETTINGS,
    PAIR_ANCHORS,
    RETRIEVAL_MODES,
    THINKING_MODES,
    TRACE_FORMATS,
)
from dca.errors import DcaError

# Option types that take one of a few words: help lists them, anything else is one clear error.
if TYPE_CHECKING:
    RetrievalMode: TypeAlias = str
    ThinkingMode: TypeAlias = str
    EvalSetting: TypeAlias = str
    TraceFormat: TypeAlias = str
    PairAnchor: TypeAlias = str
    Dtype: TypeAlias = str
    Backend: TypeAlias = str
else:
    RetrievalMode = Literal[RETRIEVAL_MODES]
    ThinkingMode = Literal[THINKING_MODES]
    EvalSetting = Literal[EVAL_SETTINGS]
    TraceFormat = Literal[TRACE_FORMATS]
    PairAnchor = Literal[PAIR_ANCHORS]
    Dtype = Literal[DTYPES]
    Backend = Literal[BACKENDS]

F = TypeVar("F", bound=Callable[..., Any])
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def _sets_env(variable: str, flag: str) -> Callable[[str | None], str | None]:
    """An option callback: a value given on the command line becomes ``variable`` for this process,
    as if the environment had said it (settings read it from there, and name ``flag`` as its source)."""

    def use(value: str | None) -> str | None:
        if value:
            from dca.settings import set_from_flag

            set_from_flag(variable, flag, value)
        return value

    return use


def _setting_flag(flag: str, variable: str, help: str) -> Any:
    """An option that sets a setting's environment variable for this run (eager: before the
    command's other options are read, so settings see it), its source shown as ``flag``."""
    return typer.Option(flag, callback=_sets_env(variable, flag), is_eager=True, help=help)


StoreOpt = Annotated[
    str | None,
    _setting_flag(
        "--store",
        "DCA_STORE",
        "Where the indexes live: a postgresql:// URL (default: the store setting; none: DCA_HOME/indexes).",
    ),
]
BackendOpt = Annotated[
    Backend | None,
    _setting_flag(
        "--backend",
        "DCA_BACKEND",
        "Where the model runs: local (llama.cpp in this process) or openai (an OpenAI-compatible "
        "server at --base-url; default: the backend setting).",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    _setting_flag(
        "--base-url",
        "DCA_BASE_URL",
        "The OpenAI-compatible server of --backend openai, e.g. http://127.0.0.1:8080/v1 (API key: DCA_API_KEY).",
    ),
]


_CONTROL = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (e.g. window titles, hyperlinks)
    r"|\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves, screen clears)
    r"|\x1b[@-_]?"  # any other escape
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # the other C0 and C1 controls (tab and newline stay)
)


def plain(text: object) -> str:
    """``text`` without terminal control sequences: file names and document text are data, and
    printed raw they could recolour, retitle or clear the user's terminal.

    >>> plain("ok\\x1b[2J\\x1b]0;pwned\\x07 done\\r")
    'ok done'
    """
    return _CONTROL.sub("", str(text))


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def resumes(fn: F) -> F:
    """Mark a command whose rerun resumes where an interruption left it (pull, index add, eval, train)."""
    fn.__dca_resumes__ = True  # type: ignore[attr-defined]
    return fn


def user_errors(fn: F) -> F:
    """Turn a DcaError into one line on stderr and exit code 1 (DCA_DEBUG=1 keeps the traceback)."""
    interrupted = (
        "interrupted; nothing was lost: rerun the same command to resume"
        if getattr(fn, "__dca_resumes__", False)
        else "interrupted; nothing was changed"
    )
    then = "rerun the same command to resume" if getattr(fn, "__dca_resumes__", False) else "rerun the command"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DcaError as exc:
            if os.environ.get("DCA_DEBUG") == "1":
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            fail(interrupted, code=130)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or os.environ.get("DCA_DEBUG") == "1":
                raise
            where = f" writing {exc.filename}" if exc.filename else ""
            fail(f"no space left on the disk{where}; free some space and {then}")
        return None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


@contextmanager
def progress_bar(unit: str = "bytes") -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr (only on a terminal), driven by (stage, done, total) callbacks."""
    if not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    counts = (DownloadColumn(), TransferSpeedColumn()) if unit == "bytes" else (MofNCompleteColumn(),)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        *counts,
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        yield update


_UsageError: type[Exception] = typer.BadParameter.__mro__[1]  # typer's own click: a bad flag or value
assert _UsageError.__name__ == "UsageError"


class OneLineErrors(TyperGroup):
    """The root command: usage errors (an unknown flag, a value outside the choices) are one
    line on stderr and exit code 1, like every other error, instead of click's usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.pop("standalone_mode", True):
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except _UsageError as exc:
            ctx = getattr(exc, "ctx", None)
            where = f"`{ctx.command_path} -h`" if ctx is not None else "`dca -h`"
            typer.echo(f"error: {exc.format_message()} ({where} lists the options)", err=True)  # type: ignore[attr-defined]
            sys.exit(1)
        except typer.Abort:
            typer.echo("aborted; nothing was changed", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


def settings() -> Any:
    """The effective user settings (dca.settings): flags override them."""
    from dca.settings import load_settings

    return load_settings()
