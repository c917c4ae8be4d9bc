"""What the installed llama.cpp build runs on this CPU, and the guard against its AMX crash.

ggml's AMX backend (Intel Xeon Sapphire Rapids and later: amx_tile, amx_int8) crashes in its
matmul on Q4_K weights (llama.cpp issue 20824), so on such a machine the default model dies
with a segmentation fault at its first token. dca's Makefile builds llama.cpp without it: a
portable build with ggml's runtime CPU dispatch and the AMX variant removed. A build made
elsewhere (a user's own wheel, a native build) may still carry it, so where the loaded CPU
backend reports AMX, models load without llama.cpp's extra weight buffer types (the AMX and
repacked-weight buffers): the setting that makes the same generation work there.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

_PATCH_LOCK = threading.Lock()


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    """What ``llama_print_system_info`` says of the backends llama.cpp has loaded."""

    backends: dict[str, dict[str, str]]  # backend name (CPU, CUDA, ...) -> feature -> value

    @property
    def cpu_features(self) -> list[str]:
        """The CPU backend's features that are on, in llama.cpp's order."""
        return [name for name, value in self.backends.get("CPU", {}).items() if value == "1"]

    @property
    def has_cpu_backend(self) -> bool:
        return "CPU" in self.backends

    @property
    def reports_amx(self) -> bool:
        """Whether the loaded CPU backend was built with, and runs, AMX."""
        return any(name.startswith("AMX") and value == "1" for name, value in self.backends.get("CPU", {}).items())


def parse_system_info(text: str) -> BuildInfo:
    """Read llama.cpp's system info: ``NAME : FEATURE = VALUE | FEATURE = VALUE | NAME : ...``.

    >>> info = parse_system_info("CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1 | ")
    >>> info.cpu_features, info.reports_amx
    (['SSE3', 'AVX2', 'AMX_INT8', 'REPACK'], True)
    >>> parse_system_info("CUDA : ARCHS = 890 | CPU : AVX2 = 1 | ").backends
    {'CUDA': {'ARCHS': '890'}, 'CPU': {'AVX2': '1'}}
    >>> parse_system_info("").has_cpu_backend
    False
    """
    backends: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for piece in text.split("|"):
        piece = piece.strip()
        if not piece:
            continue
        if " : " in piece:
            name, piece = (part.strip() for part in piece.split(" : ", 1))
            current = backends.setdefault(name, {})
        if current is None or "=" not in piece:
            continue
        feature, value = (part.strip() for part in piece.split("=", 1))
        current[feature] = value
    return BuildInfo(backends=backends)


@contextlib.contextmanager
def quiet_llama_log() -> Iterator[None]:
    """Silence llama.cpp's log while a call runs. llama-cpp-python maps ggml's log levels
    with an old enum, so warnings (one line per tensor when a LoRA loads on a CPU with
    repacked weights: "cannot use buft 'CPU_REPACK', fallback to CPU") reach the user's
    stderr even with verbose=False. Failures are reported by dca's own errors instead."""
    log = logging.getLogger("llama-cpp-python")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        log.setLevel(level)


def read_build_info() -> BuildInfo:
    """What the installed llama.cpp loaded on this machine (loads its backends if not yet done)."""
    import llama_cpp

    with quiet_llama_log():  # "load_backend: loaded CPU backend from ..." is not for the user's stderr
        llama_cpp.llama_backend_init()  # with runtime CPU dispatch, this picks and loads the CPU variant
    return parse_system_info(llama_cpp.llama_print_system_info().decode("utf-8", "replace"))


def use_extra_buffers(setting: bool | None, info: BuildInfo | None = None) -> bool:
    """Whether models load with llama.cpp's extra weight buffer types: ``setting`` when given,
    else on unless the CPU backend reports AMX (the crash guard)."""
    if setting is not None:
        return setting
    info = info if info is not None else read_build_info()
    return not info.reports_amx


@contextlib.contextmanager
def model_params(*, extra_buffers: bool) -> Iterator[None]:
    """Within this block, llama-cpp-python's ``Llama`` loads models with ``use_extra_bufts`` set
    to ``extra_buffers``: its constructor takes no such argument, but builds its model
    parameters from ``llama_model_default_params``, which is wrapped here. The caller checks
    ``llm.model_params.use_extra_bufts`` afterwards, so a llama-cpp-python that builds them
    another way is caught, not trusted."""
    if extra_buffers:
        yield
        return
    import llama_cpp.llama_cpp as lib

    with _PATCH_LOCK:
        original = lib.llama_model_default_params

        def without_extra_buffers() -> object:
            params = original()
            params.use_extra_bufts = False
            return params

        lib.llama_model_default_params = without_extra_buffers  # type: ignore[assignment]
        try:
            yield
        finally:
            lib.llama_model_default_params = original
