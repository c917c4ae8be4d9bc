"""One declaration per answer option.

An option is a field of ``AskConfig`` (dca/askconfig.py) or of its ``ReasoningConfig``
(dca/reasoning/config.py): its type and default are the field's, its checks are the config's
``__post_init__``, and its name, help and CLI flag are the field's metadata, written with
``option(...)``. Everything else is derived from those fields: the flags of ``dca ask``,
``dca chat`` and ``dca eval`` (dca/cli/options.py), the keys of the server's ``dca`` object
(dca/serve/schema.py) and the keys of an eval run's recorded config (dca/eval/runner.py).

This module imports nothing of dca's but its errors, so every floor may declare options.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any

ANSWERING = ("ask", "chat", "eval")  # the commands that answer questions and take the answer options


@dataclass(frozen=True)
class OptionSpec:
    """What a field's metadata says about it as an option."""

    help: str
    name: str = ""  # the option's name (flag without dashes, ``dca`` object key); "" = the field's
    flags: tuple[str, ...] = ()  # click declarations, e.g. ("--k", "-k"), ("--adaptive/--fixed",); () = --NAME
    commands: tuple[str, ...] = ANSWERING  # the commands that offer it ("serve": a key of the dca object)
    setting: str = ""  # a user setting (dca.settings.FIELDS) that is its default when it is not given
    record: str = ""  # its key in an eval run's recorded config when that is not its name
    choices: tuple[str, ...] = ()  # the words it may take (dca.choices), shown in --help
    shown: str = ""  # what --help says the default is, where the value alone does not say it
    metavar: str = ""


def option(
    default: Any = MISSING,
    *,
    help: str,
    default_factory: Any = MISSING,
    **spec: Any,
) -> Any:
    """A dataclass field that is an answer option (``OptionSpec``'s fields as keywords)."""
    metadata = {"option": OptionSpec(help=help, **spec)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def redefault(config: type, name: str, default: Any) -> Any:
    """``config``'s option ``name`` as a subclass redeclares it: the same declaration with
    another default (GRPO's LoRA rank is 8 where the base's is 16)."""
    return field(default=default, metadata=config.__dataclass_fields__[name].metadata)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Declared:
    """One option as declared: where it lives in the config, its type and default."""

    path: tuple[str, ...]  # attribute path from the top config, e.g. ("reasoning", "n_samples")
    kind: type  # int, float, str or bool
    optional: bool  # None is one of its values
    default: Any
    spec: OptionSpec

    @property
    def name(self) -> str:
        return self.spec.name or self.path[-1]

    @property
    def record(self) -> str:
        return self.spec.record or self.name


def _plain_type(hint: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed) of a field's resolved type hint."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else hint), True
    return hint, False


def declared(config: type, command: str | None = None) -> list[Declared]:
    """The options of ``config`` (an AskConfig-like dataclass, nested configs included), in field
    order; only those ``command`` offers when it is given."""
    found: list[Declared] = []
    _walk(config, (), found)
    return [d for d in found if command is None or command in d.spec.commands]


def _walk(config: type, prefix: tuple[str, ...], found: list[Declared]) -> None:
    hints = typing.get_type_hints(config)
    for item in dataclasses.fields(config):
        kind, optional = _plain_type(hints[item.name])
        if dataclasses.is_dataclass(kind):
            _walk(kind, (*prefix, item.name), found)  # type: ignore[arg-type]
            continue
        spec = item.metadata.get("option")
        if spec is None:
            continue
        default = item.default if item.default is not MISSING else item.default_factory()  # type: ignore[misc,operator]
        found.append(Declared((*prefix, item.name), kind, optional, default, spec))


def with_options(config: Any, given: dict[str, Any], command: str | None = None) -> Any:
    """``config`` with the options in ``given`` (option name -> value) set; the configs' own
    checks run on the result (a bad value raises ConfigError, and so does a name that is not an
    option of ``command``)."""
    from dca.errors import ConfigError

    known = {d.name: d for d in declared(type(config), command)}
    nested: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, value in given.items():
        item = known.get(name)
        if item is None:
            raise ConfigError(f"unknown option {name!r}; use one of: {', '.join(known)}")
        nested.setdefault(item.path[:-1], {})[item.path[-1]] = value
    return _replace(config, (), nested)


def _replace(config: Any, prefix: tuple[str, ...], nested: dict[tuple[str, ...], dict[str, Any]]) -> Any:
    changes = dict(nested.get(prefix, {}))
    for path in {p[: len(prefix) + 1] for p in nested if len(p) > len(prefix) and p[: len(prefix)] == prefix}:
        changes[path[-1]] = _replace(getattr(config, path[-1]), path, nested)
    return dataclasses.replace(config, **changes) if changes else config


def option_values(config: Any, command: str | None = None) -> list[tuple[Declared, Any]]:
    """Each option of ``config`` (those ``command`` offers) with its value there."""
    out: list[tuple[Declared, Any]] = []
    for item in declared(type(config), command):
        value = config
        for part in item.path:
            value = getattr(value, part)
        out.append((item, value))
    return out
