"""User settings: the defaults for model, index, k, threads, GPU layers, the question log, the
store that holds the indexes and the backend that runs the model.

Each value comes from, in order: the command's flag, an environment variable
(``DCA_MODEL``, ``DCA_INDEX``, ``DCA_K``, ``DCA_THREADS``, ``DCA_GPU_LAYERS``, ``DCA_LOG``, ``DCA_STORE``,
``DCA_BACKEND``, ``DCA_BASE_URL``, ``DCA_SERVED_MODEL``, ``DCA_API_KEY``, ``DCA_TIMEOUT``),
``settings.toml`` in DCA_HOME (a ``[defaults]`` table), then dca's built-in default.
``dca doctor`` shows each effective value and where it came from.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.config import Paths
from dca.errors import ConfigError
from dca.files import atomic_write_bytes

# name -> (environment variable, type, built-in default, what it is)
FIELDS: dict[str, tuple[str, type, Any, str]] = {
    "model": ("DCA_MODEL", str, None, "generator (none: the catalog's default)"),
    "index": ("DCA_INDEX", str, "default", "knowledge index of ask, chat and the index commands"),
    "k": ("DCA_K", int, 3, "sources retrieved per question"),
    "threads": ("DCA_THREADS", int, 0, "CPU threads of the generator (0: the physical cores)"),
    "gpu_layers": ("DCA_GPU_LAYERS", int, -1, "layers offloaded to a GPU (-1: all when the build can)"),
    "log": ("DCA_LOG", bool, True, "record questions in the question log (dca logs)"),
    "store": ("DCA_STORE", str, None, "where indexes live: a postgresql:// URL (none: the embedded store)"),
    "backend": ("DCA_BACKEND", str, "local", "where the model runs: local (llama.cpp here) or openai (a server)"),
    "base_url": ("DCA_BASE_URL", str, None, "the openai backend's server, e.g. http://127.0.0.1:8080/v1"),
    "served_model": ("DCA_SERVED_MODEL", str, None, "the model's name on that server (none: its only model)"),
    "api_key": ("DCA_API_KEY", str, None, "the API key of that server (never shown)"),
    "timeout": ("DCA_TIMEOUT", int, 300, "seconds a request to that server may take"),
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_FROM_FLAGS: dict[str, tuple[str, str]] = {}  # environment variable -> (flag, value) a command line set


def set_from_flag(variable: str, flag: str, value: str) -> None:
    """A flag's value becomes ``variable`` for this process (and the processes it starts), and
    the settings say it came from ``flag``, not from the environment."""
    os.environ[variable] = value
    _FROM_FLAGS[variable] = (flag, value)


def settings_file(paths: Paths) -> Path:
    return paths.home / "settings.toml"


@dataclass(frozen=True)
class Settings:
    """The effective settings and where each came from ("env DCA_K", "settings.toml", "built-in")."""

    values: dict[str, Any]
    sources: dict[str, str]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def pick(self, name: str, flag: Any) -> Any:
        """The flag's value when given (not None), else the setting."""
        return self.values[name] if flag is None else flag


def _parse(name: str, raw: Any, where: str) -> Any:
    kind = FIELDS[name][1]
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ConfigError(f"{where}: {name} must be true or false, got {raw!r}")
    if kind is int:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {name} must be a whole number, got {raw!r}") from None
        if (
            (name in ("k", "timeout") and value < 1)
            or (name == "threads" and value < 0)
            or (name == "gpu_layers" and value < -1)
        ):
            raise ConfigError(f"{where}: {name} is out of range ({value})")
        return value
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}: {name} must be a non-empty string, got {raw!r}")
    if name == "backend" and raw.strip() not in ("local", "openai"):
        raise ConfigError(f"{where}: backend must be local or openai, got {raw!r}")
    return raw.strip()


def _read_file(paths: Paths) -> dict[str, Any]:
    path = settings_file(paths)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it or delete it") from None
    table = data.get("defaults", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [defaults] must be a table")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(FIELDS)}")
    return table


def load_settings(paths: Paths | None = None) -> Settings:
    """The effective settings for DCA_HOME: environment over settings.toml over built-ins."""
    paths = paths or Paths.resolve()
    stored = _read_file(paths)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (env, _kind, default, _help) in FIELDS.items():
        raw = os.environ.get(env, "")
        if name == "log" and not raw and os.environ.get("DCA_NO_LOG", "").lower() in _TRUE:
            values[name], sources[name] = False, "env DCA_NO_LOG"
        elif raw:
            flag, given = _FROM_FLAGS.get(env, ("", None))
            where, described = (flag, flag) if given == raw else (f"env {env}", f"environment variable {env}")
            values[name], sources[name] = _parse(name, raw, described), where
        elif name in stored:
            values[name], sources[name] = _parse(name, stored[name], str(settings_file(paths))), "settings.toml"
        else:
            values[name], sources[name] = default, "built-in"
    return Settings(values, sources)


def save_setting(paths: Paths, name: str, value: Any) -> Path:
    """Write ``name = value`` into settings.toml's [defaults] (atomically); None removes it."""
    if name not in FIELDS:
        raise ConfigError(f"unknown setting {name!r}; known: {', '.join(FIELDS)}")
    stored = dict(_read_file(paths))
    if value is None:
        stored.pop(name, None)
    else:
        stored[name] = _parse(name, value, "the new value")
    lines = [
        "# dca settings (dca doctor shows the effective values); environment variables win over these",
        "[defaults]",
    ]
    for key, item in stored.items():
        text = ("true" if item else "false") if isinstance(item, bool) else json.dumps(item, ensure_ascii=False)
        lines.append(f"{key} = {text}")
    path = settings_file(paths)
    paths.ensure_writable(path.parent)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return path
