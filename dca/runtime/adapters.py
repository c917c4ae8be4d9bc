"""Where LoRA adapters come from: the catalog (the reasoning adapter that ships with dca),
``models/adapters/NAME.gguf``, or an explicit GGUF path; and which one a question uses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from dca.config import Paths
from dca.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    from dca.models.catalog import ModelEntry

NO_ADAPTER = "none"  # --adapter none: the base model alone, even where an adapter is the default
log = logging.getLogger(__name__)


def resolve_adapter(adapter: str, paths: Paths) -> tuple[str, Path]:
    """(name, path) of a catalog adapter, of ``models/adapters/NAME.gguf``, or of a GGUF path."""
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path.resolve()
    entry = _catalog_adapter(adapter, paths)
    if entry is not None:
        return adapter, entry.path(paths)
    candidate = paths.models / "adapters" / f"{adapter}.gguf"
    if candidate.is_file():
        return adapter, candidate
    folder = paths.models / "adapters"
    known = sorted(p.stem for p in folder.glob("*.gguf")) if folder.is_dir() else []
    raise ConfigError(f"no adapter {adapter!r} (put NAME.gguf in {folder}; found: {', '.join(known) or 'none'})")


def _catalog_adapter(name: str, paths: Paths) -> ModelEntry | None:
    from dca.models.catalog import Catalog

    try:
        entry = Catalog.load(paths).get(name)
    except CatalogError:
        return None
    return entry if entry.role == "adapter" else None


def default_adapter(model: str, paths: Paths) -> str | None:
    """The catalog's default adapter for the generator ``model`` when its file is present and
    verified, else None (a missing or damaged file is logged, and the base model answers)."""
    from dca.models.catalog import Catalog
    from dca.models.verify import check_model

    try:
        entry = Catalog.load(paths).adapter_for(model)
    except CatalogError:
        return None
    if entry is None:
        return None
    status = check_model(entry, paths)
    if not status.verified:
        log.warning("adapter %s is not used: %s", entry.name, status.detail)
        return None
    return entry.name


def choose_adapter(requested: str | None, model: str, *, thinking: bool, paths: Paths) -> str | None:
    """The adapter a question uses: the one asked for; none for ``none``; else, when it reasons,
    the default adapter made for ``model`` (single passes use the base model alone)."""
    if requested == NO_ADAPTER:
        return None
    if requested:
        return requested
    return default_adapter(model, paths) if thinking else None
