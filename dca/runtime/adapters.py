"""Where LoRA adapters live: ``models/adapters/NAME.gguf`` or an explicit GGUF path."""

from __future__ import annotations

from pathlib import Path

from dca.config import Paths
from dca.errors import ConfigError


def resolve_adapter(adapter: str, paths: Paths) -> tuple[str, Path]:
    """(name, path) of ``models/adapters/NAME.gguf`` or of a GGUF path."""
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path.resolve()
    candidate = paths.models / "adapters" / f"{adapter}.gguf"
    if candidate.is_file():
        return adapter, candidate
    folder = paths.models / "adapters"
    known = sorted(p.stem for p in folder.glob("*.gguf")) if folder.is_dir() else []
    raise ConfigError(f"no adapter {adapter!r} (put NAME.gguf in {folder}; found: {', '.join(known) or 'none'})")
