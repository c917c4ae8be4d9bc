"""Flags derived from the one declaration of each option (dca/options.py): the answer options of
dca/askconfig.py, the training options of dca/train/configs.py.

``@answer_options("ask")`` gives a command one flag per option the command offers, after its own
parameters; the command receives them as one keyword, ``options``: option name -> value of the
flags given (a flag not given is absent, so the config's own default, the measured reasoning
default or a user setting applies).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer

from dca.options import Declared, declared

F = TypeVar("F", bound=Callable[..., Any])


def _shown(item: Declared) -> str:
    """The default as --help says it."""
    if item.spec.shown:
        return item.spec.shown
    if item.spec.setting:
        from dca.settings import FIELDS

        return f"the {item.spec.setting} setting, {FIELDS[item.spec.setting][2]}"
    if item.default is None:
        return "unset"
    if item.kind is bool:
        on, _, off = (item.spec.flags[0] if item.spec.flags else f"--{item.name}").partition("/")
        return on if item.default else off
    return str(item.default)


def _parameter(item: Declared) -> inspect.Parameter:
    flags = item.spec.flags or (f"--{item.name.replace('_', '-')}",)
    kind: Any = Literal[item.spec.choices] if item.spec.choices else item.kind
    info = typer.Option(
        *flags,
        help=f"{item.spec.help} (default: {_shown(item)})",
        metavar=item.spec.metavar or None,
        show_default=False,
    )
    return inspect.Parameter(
        item.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, info]
    )


def answer_options(command: str) -> Callable[[F], F]:
    """Decorate a command that takes ``options: dict[str, Any]`` with the flags of ``command``'s
    answer options (see the module's docstring)."""
    from dca.askconfig import AskConfig

    return config_options(AskConfig, command)


def config_options(config: type, command: str | None = None) -> Callable[[F], F]:
    """The same for the options of any config declared with ``option(...)`` (all of them, or
    those ``command`` offers): ``dca train sft`` takes SFTConfig's."""
    items = declared(config, command)

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True)
        names = {item.name for item in items}
        clash = names & set(own.parameters)
        if clash:
            raise TypeError(f"{fn.__name__} declares {sorted(clash)} itself; they are answer options")

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            return fn(**kwargs, options={name: value for name, value in given.items() if value is not None})

        parameters = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for n, p in own.parameters.items() if n != "options"
        ]
        wrapper.__signature__ = own.replace(parameters=[*parameters, *map(_parameter, items)])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {}
        return wrapper  # type: ignore[return-value]

    return decorate


def with_settings(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with each option that has a user setting (``k``) and was not given taken from
    the settings (flag, then environment, then settings.toml, then the built-in)."""
    from dca.askconfig import AskConfig
    from dca.cli.common import settings

    chosen = None
    filled = dict(options)
    for item in declared(AskConfig):
        if item.spec.setting and item.name not in filled:
            chosen = chosen or settings()
            filled[item.name] = chosen[item.spec.setting]
    return filled
