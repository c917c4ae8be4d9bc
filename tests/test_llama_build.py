"""The llama.cpp build: portable, no AMX backend or the runtime's guard engaged,
rebuilt when its flags change, and doctor's tiny generation in a child that may crash."""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_gguf
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.runtime.build import model_params, parse_system_info, read_build_info, use_extra_buffers
from dca.runtime.selftest import SelftestResult, _run_child

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

AMX_INFO = parse_system_info(
    "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 | "
)
PLAIN_INFO = parse_system_info("CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | REPACK = 1 | ")


# ---- what the library reports, and the guard ----------------------------------------------------
def test_the_guard_turns_extra_buffers_off_only_where_amx_is_reported() -> None:
    assert AMX_INFO.reports_amx and not PLAIN_INFO.reports_amx
    assert use_extra_buffers(None, AMX_INFO) is False
    assert use_extra_buffers(None, PLAIN_INFO) is True
    # an explicit setting wins both ways (benchmarks measure each)
    assert use_extra_buffers(True, AMX_INFO) is True and use_extra_buffers(False, PLAIN_INFO) is False
    assert not parse_system_info("CPU : AVX2 = 1 | AMX_INT8 = 0 | ").reports_amx


def test_model_params_are_changed_only_inside_the_block() -> None:
    import llama_cpp.llama_cpp as lib

    assert lib.llama_model_default_params().use_extra_bufts is True
    with model_params(extra_buffers=False):
        assert lib.llama_model_default_params().use_extra_bufts is False
    assert lib.llama_model_default_params().use_extra_bufts is True
    with pytest.raises(RuntimeError), model_params(extra_buffers=False):
        raise RuntimeError("a failed load")
    assert lib.llama_model_default_params().use_extra_bufts is True  # restored after an error too


def test_the_installed_library_has_no_amx_backend_or_the_guard_engages() -> None:
    info = read_build_info()
    assert info.has_cpu_backend, info.backends
    assert "AVX" in info.cpu_features or platform.machine() != "x86_64", info.cpu_features
    if info.reports_amx:  # a build made elsewhere: dca must not use the AMX buffers
        assert use_extra_buffers(None, info) is False
    else:
        assert not any(name.startswith("AMX") for name in info.cpu_features)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the portable build is for x86-64")
def test_the_make_built_venv_is_portable_without_the_amx_variant() -> None:
    venv = ROOT / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        pytest.skip("not running from the Makefile's .venv")
    modules = sorted(p.name for p in (venv / "lib" / "ggml-backends").glob("libggml-cpu-*.so"))
    assert "libggml-cpu-haswell.so" in modules and "libggml-cpu-x64.so" in modules, modules
    assert not [m for m in modules if "sapphirerapids" in m], modules
    stamp = (venv / ".llama").read_text(encoding="utf-8")
    assert "-DGGML_NATIVE=OFF" in stamp and "-DGGML_CPU_ALL_VARIANTS=ON" in stamp


# ---- the Makefile: the build flags are part of the install stamp ------------------------------------
@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    """A copy of the Makefile beside a .venv whose every step is stamped done, oldest first."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    stamps = [venv / "bin" / "python", venv / ".torch", venv / ".llama", venv / ".installed"]
    now = time.time()
    for age, path in zip(range(len(stamps), 0, -1), stamps, strict=True):
        path.touch()
        os.utime(path, (now - 60 * age, now - 60 * age))
    os.utime(tmp_path / "pyproject.toml", (now - 3600, now - 3600))
    return tmp_path


def _make(folder: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "MAKEFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "-n", *args], cwd=folder, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def _stamp(folder: Path, *args: str) -> None:
    """Write the stamp a finished build with ``args`` leaves, keeping its old time."""
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_ARGS", "MAKEFLAGS", "MAKELEVEL")}
    build_id = subprocess.run(
        ["make", "-s", "llama-build-id", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    ).stdout
    stamp = folder / ".venv" / ".llama"
    times = (stamp.stat().st_atime, stamp.stat().st_mtime)
    stamp.write_text(build_id, encoding="utf-8")
    os.utime(stamp, times)


def test_a_venv_stamped_before_the_portable_flags_is_rebuilt(fake_venv: Path) -> None:
    plan = _make(fake_venv, "install")  # the old stamp is an empty file (`touch`)
    assert "pip install --force-reinstall --no-deps --no-cache-dir" in plan
    assert "-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON" in plan
    assert "libggml-cpu-sapphirerapids.so" in plan  # the AMX variant is removed after the build
    assert "pip install -e '.[dev]'" in plan  # dca is reinstalled on top


def test_a_venv_stamped_with_the_current_flags_is_not_rebuilt(fake_venv: Path) -> None:
    _stamp(fake_venv)
    assert "pip install" not in _make(fake_venv, "install")
    assert "pip install --force-reinstall" in _make(fake_venv, "install", "LLAMA_SPEC=llama-cpp-python==0.3.37")


def test_a_gpu_users_cmake_args_add_to_the_flags_and_are_remembered(fake_venv: Path) -> None:
    _stamp(fake_venv)
    plan = _make(fake_venv, "install", "CMAKE_ARGS=-DGGML_CUDA=on")
    assert "-DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DIR=" in plan and "-DGGML_CUDA=on" in plan
    _stamp(fake_venv, "CMAKE_ARGS=-DGGML_CUDA=on")
    assert "pip install" not in _make(fake_venv, "install")  # a later `make run` keeps the CUDA build
    assert "-DGGML_CUDA=on" in _make(fake_venv, "rebuild-llama")  # and so does a rebuild


# ---- doctor's tiny generation ---------------------------------------------------------------------
def test_a_crashing_child_is_a_result_not_the_end_of_doctor() -> None:
    crash = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    result = _run_child([sys.executable, "-c", crash], timeout_s=60)
    assert result.crashed and not result.ok and "SIGSEGV" in result.detail
    result = _run_child([sys.executable, "-c", 'print(\'{"error": "no such model"}\')'], timeout_s=60)
    assert not result.ok and not result.crashed and result.detail == "no such model"
    result = _run_child([sys.executable, "-c", "import sys; sys.exit('boom')"], timeout_s=60)
    assert not result.ok and "code 1" in result.detail and "boom" in result.detail
    hang = _run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=1)
    assert not hang.ok and "1 s" in hang.detail
    assert signal.SIGSEGV  # the signal name comes from the signal module on every platform


def test_doctor_names_the_rebuild_when_the_generation_crashes(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = write_gguf(tmp_path / "tiny.gguf")
    added = runner.invoke(app, ["models", "add", str(model), "--name", "tiny"])
    assert added.exit_code == 0, added.output
    chosen = runner.invoke(app, ["models", "default", "tiny"])
    assert chosen.exit_code == 0, chosen.output
    calls = []

    def crashed(path: Path, **_: object) -> SelftestResult:
        calls.append(path)
        return SelftestResult(ok=False, crashed=True, detail="llama.cpp crashed (SIGSEGV) generating 8 tokens")

    monkeypatch.setattr("dca.runtime.selftest.run_selftest", crashed)
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    check = next(c for c in json.loads(result.stdout)["checks"] if c["name"] == "generation")
    assert not check["ok"] and check["required"] and "SIGSEGV" in check["detail"]
    assert "make rebuild-llama" in check["fix"]
    assert calls == [model.resolve()]


def test_doctor_says_when_the_generation_is_not_tried(home: Paths) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert "not tried" in checks["generation"]["detail"] and not checks["generation"]["required"]
    assert "CPU features:" in checks["llama.cpp"]["detail"]
