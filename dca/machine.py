"""The machine a figure was measured on: Python, platform, core count and the CPU's model and
instruction-set flags. The CPU differs from one machine to the next, and llama.cpp's speed and
even its greedy output depend on it, so every recorded figure carries it (light: no imports
beyond the standard library)."""

from __future__ import annotations

import os
import platform
from typing import Any

# The flags llama.cpp's kernels (and torch's bfloat16) depend on; avx512* and amx* are kept too.
_SHOWN_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni")


def _cpuinfo() -> tuple[str, dict[str, str], list[str]]:
    """The first processor's model name, its vendor/family/model ids and its flags ("" and
    empty where /proc/cpuinfo cannot be read, e.g. not on Linux)."""
    model, ids, flags = "", {}, []
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("vendor_id", "cpu family", "model"):
                    ids[key] = value.strip()  # a VM's model name may hide the generation
                elif key == "flags":
                    flags = value.split()
                    break
    except OSError:
        pass
    return model, ids, flags


def cpu_flags() -> str:
    """All of the CPU's flags, space-separated ("" where they cannot be read)."""
    return " ".join(_cpuinfo()[2])


def cpu() -> dict[str, str]:
    """The CPU's model name with its ids, e.g. "AMD EPYC (AuthenticAMD family 25 model 17)", and
    the flags llama.cpp's speed depends on."""
    model, ids, flags = _cpuinfo()
    model = model or platform.processor()
    if ids:
        model += f" ({ids.get('vendor_id', '?')} family {ids.get('cpu family', '?')} model {ids.get('model', '?')})"
    shown = [f for f in flags if f in _SHOWN_FLAGS or f.startswith(("avx512", "amx"))]
    return {"cpu_model": model, "cpu_flags": " ".join(shown)}


def machine() -> dict[str, Any]:
    """Python, platform, cores, memory and the CPU, as a run folder or a result file records them."""
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            memory = handle.readline().split(":")[1].strip()
    except (OSError, IndexError):
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory": memory,
        **cpu(),
    }
