"""Where LoRA adapters come from: the catalog (the reasoning adapter that ships with dca),
``models/adapters/NAME.gguf``, or an explicit GGUF path; and which one a question uses. The same
for the verify strategy's learned verifier: a catalog verifier (a preference-trained LoRA with
its ``NAME.verifier.json`` beside it), or a verifier file of `dca train probe|dpo`; and for the
grounded check's probe (a catalog probe, or a probe file)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dca.config import Paths
from dca.errors import CatalogError, ConfigError

if TYPE_CHECKING:
    from dca.models.catalog import ModelEntry

NO_ADAPTER = "none"  # --adapter none: the base model alone, even where an adapter is the default
NO_VERIFIER = "none"  # --verifier none: the weighted vote on execution facts alone
VERIFIER_SUFFIX = ".verifier.json"  # `dca train dpo`'s verifier file, NAME.verifier.json
PROBE_SUFFIX = ".probe.json"  # `dca train probe`'s, NAME.probe.json
log = logging.getLogger(__name__)


def resolve_adapter(adapter: str, paths: Paths) -> tuple[str, Path]:
    """(name, path) of a catalog adapter, of ``models/adapters/NAME.gguf``, or of a GGUF path."""
    path = Path(adapter).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path.stem, path.resolve()
    entry = _catalog_entry(adapter, "adapter", paths)
    if entry is not None:
        return adapter, entry.path(paths)
    candidate = paths.models / "adapters" / f"{adapter}.gguf"
    if candidate.is_file():
        return adapter, candidate
    folder = paths.models / "adapters"
    known = sorted(p.stem for p in folder.glob("*.gguf")) if folder.is_dir() else []
    raise ConfigError(f"no adapter {adapter!r} (put NAME.gguf in {folder}; found: {', '.join(known) or 'none'})")


def _catalog_entry(name: str, role: str, paths: Paths) -> ModelEntry | None:
    """The catalog entry ``name`` if it is one of ``role`` (adapter or verifier), else None."""
    from dca.models.catalog import Catalog

    try:
        entry = Catalog.load(paths).get(name)
    except CatalogError:
        return None
    return entry if entry.role == role else None


def _verified_default(role: str, model: str, paths: Paths, *, damaged: str = "") -> ModelEntry | None:
    """The catalog's default ``role`` entry (adapter, verifier or judge) for the generator
    ``model`` when its file is present and verified, else None (a missing or damaged file is
    logged; with ``damaged``, a ConfigError saying it, formatted with the entry's ``name`` and
    the check's ``detail``)."""
    from dca.models.catalog import Catalog
    from dca.models.verify import check_model

    try:
        catalog = Catalog.load(paths)
    except CatalogError:
        return None
    entry = catalog.made_for(role, model)
    if entry is None:
        return None
    status = check_model(entry, paths)
    if not status.verified and damaged:
        raise ConfigError(damaged.format(name=entry.name, detail=status.detail))
    if not status.verified:
        log.warning("%s %s is not used: %s", role, entry.name, status.detail)
        return None
    return entry


def default_adapter(model: str, paths: Paths) -> str | None:
    """The catalog's default adapter for the generator ``model`` when its file is present and
    verified, else None (a missing or damaged file is logged, and the base model answers)."""
    entry = _verified_default("adapter", model, paths)
    return entry.name if entry is not None else None


def choose_adapter(requested: str | None, model: str, *, thinking: bool, paths: Paths) -> str | None:
    """The adapter a question uses: the one asked for; none for ``none``; else, when it reasons,
    the default adapter made for ``model`` (single passes use the base model alone)."""
    if requested == NO_ADAPTER:
        return None
    if requested:
        return requested
    return default_adapter(model, paths) if thinking else None


def verifier_name(path: str | None) -> str | None:
    """A verifier file's name without its kind's suffix: a catalog verifier's name, or a run's.

    >>> verifier_name("models/adapters/qwen2.5-coder-1.5b-verifier.verifier.json"), verifier_name(None)
    ('qwen2.5-coder-1.5b-verifier', None)
    """
    if path is None:
        return None
    return Path(path).name.removesuffix(VERIFIER_SUFFIX).removesuffix(PROBE_SUFFIX)


def verifier_file(entry: ModelEntry, paths: Paths) -> Path:
    """The verifier file of a catalog verifier: ``NAME.verifier.json`` beside its adapter."""
    adapter = entry.path(paths)
    return adapter.with_name(adapter.stem + VERIFIER_SUFFIX)


def default_verifier(model: str, paths: Paths) -> Path | None:
    """The catalog's default verifier for the generator ``model`` when its adapter is present and
    verified (size and sha256) and its verifier file is there, else None (logged)."""
    entry = _verified_default("verifier", model, paths)
    if entry is None:
        return None
    path = verifier_file(entry, paths)
    if not path.is_file():
        log.warning("verifier %s is not used: %s is missing", entry.name, path)
        return None
    return path


def default_judge(model: str, paths: Paths) -> Path | None:
    """The file of the catalog's default grounding judge for the generator ``model`` (None: the
    catalog has none); a judge file that is missing or fails its size and sha256 is a one-line
    ConfigError, not a silent answer without the check."""
    damaged = "grounding judge {name} is damaged ({detail}); reinstall dca, or answer with --no-check"
    entry = _verified_default("judge", model, paths, damaged=damaged)
    return entry.path(paths) if entry is not None else None


def _asked_for(requested: str, role: str, paths: Paths, file_of: Callable[[ModelEntry], Path]) -> str | None:
    """The file a ``--verifier`` value names: a file, or the file of a
    catalog entry of ``role`` (``file_of`` finds it); None when it names neither."""
    path = Path(requested).expanduser()
    if path.is_file():
        return str(path)
    entry = _catalog_entry(requested, role, paths)
    return str(file_of(entry)) if entry is not None else None


def choose_verifier(requested: str | None, model: str, paths: Paths) -> str | None:
    """The verifier file the verify strategy weighs with: the file or catalog verifier asked for;
    none for ``none``; else the catalog's default verifier for ``model`` (None: there is none)."""
    if requested == NO_VERIFIER:
        return None
    if requested:
        found = _asked_for(requested, "verifier", paths, lambda entry: verifier_file(entry, paths))
        if found is None:
            raise ConfigError(
                f"verifier {requested} does not exist; give a file of `dca train probe` or `dca train dpo`, "
                "a verifier of `dca models list`, or none"
            )
        return found
    default = default_verifier(model, paths)
    return str(default) if default else None
