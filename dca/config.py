"""Where dca keeps its data: one place that resolves DCA_HOME, models/ and indexes/.

Resolution order: an explicit argument, then the ``DCA_HOME`` environment variable,
then the source checkout this package was imported from (so a clone uses its own
top-level ``models/`` and ``indexes/``), then the platform's user data folder.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from dca.errors import ConfigError

APP_NAME = "dca"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _checkout_root() -> Path | None:
    """The repository root when dca runs from a source checkout, else None."""
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "models" / "catalog.toml").is_file():
        return root
    return None


def _user_data_dir() -> Path:
    """The platform's per-user data folder for dca (no third-party dependency)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def resolve_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the dca home folder (not created here).

    >>> resolve_home("/tmp/x").as_posix()
    '/tmp/x'
    """
    if explicit is not None:
        return _home_folder(Path(explicit).expanduser().resolve(), str(explicit))
    env = os.environ.get("DCA_HOME")
    if env:
        return _home_folder(Path(env).expanduser().resolve(), f"DCA_HOME={env}")
    return _checkout_root() or _user_data_dir()


def _home_folder(path: Path, given: str) -> Path:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{given} is a file, not a folder; point DCA_HOME at a folder (it is created if missing)")
    return path


@dataclass(frozen=True, kw_only=True)
class Paths:
    """The folders dca reads and writes, derived from one home folder."""

    home: Path  # DCA_HOME: parent of models/ and indexes/

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> Paths:
        return cls(home=resolve_home(explicit))

    @property
    def models(self) -> Path:
        return self.home / "models"

    @property
    def indexes(self) -> Path:
        return self.home / "indexes"

    @property
    def catalog(self) -> Path:
        """The catalog in DCA_HOME if it has one, else the one shipped with dca."""
        own = self.models / "catalog.toml"
        if own.is_file():
            return own
        root = _checkout_root()
        # A wheel carries models/catalog.toml as dca/runtime/catalog.toml (pyproject force-include).
        return root / "models" / "catalog.toml" if root else _PACKAGE_DIR / "runtime" / "catalog.toml"

    def bundled(self, file: str) -> Path:
        """A file dca ships (e.g. the reasoning adapter): models/FILE in DCA_HOME if it is there,
        else in the source checkout, else inside the installed package."""
        own = self.models / file
        if own.is_file():
            return own
        root = _checkout_root()
        # A wheel carries models/adapters/ as dca/runtime/adapters/ (pyproject force-include).
        return root / "models" / file if root else _PACKAGE_DIR / "runtime" / file

    @property
    def user_models(self) -> Path:
        """Registry of the user's own models (``dca models add``)."""
        return self.models / "user-models.json"

    @property
    def partial(self) -> Path:
        """Work area for interrupted pulls; lives beside the models for atomic renames."""
        return self.models / ".partial"

    def ensure_writable(self, folder: Path) -> Path:
        """Create ``folder`` if needed and check dca can write there."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"cannot write to {folder} ({exc.strerror or exc}); "
                "set DCA_HOME to a writable folder or fix its permissions"
            ) from None
        return folder
