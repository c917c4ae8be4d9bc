"""``dca models add``: register a user's own GGUF file in models/user-models.json."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dca.config import Paths
from dca.errors import CatalogError, GGUFError
from dca.files import atomic_write_json, sha256_file
from dca.models.catalog import Catalog, ModelEntry, ModelSource, read_user_models, validate_name
from dca.models.gguf import read_gguf_info
from dca.models.verify import write_stamp


def add_user_model(path: Path, *, name: str, paths: Paths, progress: Callable[[int], None] | None = None) -> ModelEntry:
    """Check ``path`` is a complete GGUF model, hash it, and register it as ``name``.

    The file stays where it is; the registry records its absolute path and sha256.
    """
    validate_name(name)
    try:
        path = path.expanduser().resolve(strict=True)
    except FileNotFoundError:
        raise GGUFError(f"{path} does not exist") from None
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise GGUFError(f"{path} cannot be resolved ({exc}); give the model file itself") from None
    info = read_gguf_info(path)  # raises GGUFError for a missing, truncated or non-GGUF file
    catalog = Catalog.load(paths)
    if name in catalog.names:
        raise CatalogError(f"a model named {name!r} already exists; choose another --name")
    entry = ModelEntry(
        name=name,
        role="generator",
        file=path.name,
        size=path.stat().st_size,
        sha256=sha256_file(path, progress),
        source=ModelSource(kind="local", path=str(path)),
        notes=f"{info.name or info.architecture}, added with `dca models add`",
        metadata=info.to_json(),
    )
    paths.ensure_writable(paths.models)
    models = [*read_user_models(paths), entry.to_json()]
    atomic_write_json(paths.user_models, {"models": models})
    write_stamp(entry, paths, entry.sha256)
    return entry


def remove_model(name: str, *, paths: Paths) -> str:
    """Remove model ``name``: a pulled model's files and stamp are deleted; a user model is
    unregistered (its file, which dca never owned, stays). Returns what was done, in words."""
    import shutil

    entry = Catalog.load(paths).get(name)
    if entry.source.kind == "bundled":
        raise CatalogError(f"{name} ships with dca and cannot be removed; `--adapter none` turns an adapter off")
    stamp = paths.models / ".verified" / f"{name}.json"
    if entry.source.kind == "local":
        paths.ensure_writable(paths.models)
        kept = [m for m in read_user_models(paths) if m.get("name") != name]
        atomic_write_json(paths.user_models, {"models": kept})
        stamp.unlink(missing_ok=True)
        return f"unregistered {name} (the file {entry.source.path} stays where it is)"
    target = entry.path(paths)
    if not target.exists() and not stamp.exists():
        raise CatalogError(f"{name} is not pulled; there is nothing to remove")
    freed = 0
    if target.is_dir():
        freed = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target)
    elif target.exists():
        freed = target.stat().st_size
        target.unlink()
    stamp.unlink(missing_ok=True)
    shutil.rmtree(paths.partial / name, ignore_errors=True)
    return f"removed {name} ({freed / 1e6:,.0f} MB freed); `dca pull {name}` brings it back"
