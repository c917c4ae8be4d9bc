"""``dca doctor``: check that this machine can run dca, and say how to fix what is missing."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from dca.config import Paths
from dca.errors import DcaError
from dca.models.catalog import MADE_FOR_A_BASE, Catalog
from dca.models.verify import check_model

_MIN_FREE_DISK = 2 << 30
_MIN_FREE_RAM = 2 << 30


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str  # what was found
    fix: str = ""  # what to do when not ok
    required: bool = True  # a failing required check makes `dca doctor` exit 1

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix, "required": self.required}


def _check_python() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check(
        name="python",
        ok=ok,
        detail=f"{platform.python_version()} at {sys.executable}",
        fix="install Python 3.11 or newer",
    )


_REBUILD = (
    "rebuild llama-cpp-python portable with `make rebuild-llama` (outside the Makefile: see "
    "docs/models.md, 'The llama.cpp build')"
)


def _check_llama() -> Check:
    try:
        import llama_cpp
    except ImportError as exc:
        return Check(
            name="llama.cpp", ok=False, detail=f"llama-cpp-python not importable ({exc})", fix="run `make install`"
        )
    from dca.runtime.build import read_build_info

    info = read_build_info()
    if not info.has_cpu_backend:
        return Check(
            name="llama.cpp",
            ok=False,
            detail=f"llama-cpp-python {llama_cpp.__version__} loaded no CPU backend (its backend modules are missing)",
            fix=_REBUILD,
        )
    gpu = bool(llama_cpp.llama_supports_gpu_offload())
    where = "can offload to a GPU (n_gpu_layers)" if gpu else "CPU only (no GPU offload in this build)"
    guard = (
        "AMX reported: models load without extra weight buffers (crash guard)" if info.reports_amx else "no AMX backend"
    )
    return Check(
        name="llama.cpp",
        ok=True,
        detail=f"llama-cpp-python {llama_cpp.__version__}, {where}; CPU features: "
        f"{' '.join(info.cpu_features) or 'none reported'}; {guard}",
    )


def _few_tokens() -> Any:
    from dca.runtime.generation import GenerationConfig

    return GenerationConfig(max_tokens=4)


def _check_generation(paths: Paths) -> Check:
    """A few tokens from the default generator, in a child process: a crash there is reported here."""
    from dca.runtime.llama import resolve_model
    from dca.runtime.selftest import run_selftest
    from dca.settings import load_settings

    try:
        name, path = resolve_model(load_settings(paths).values.get("model"), paths)
    except DcaError as exc:
        return Check(name="generation", ok=True, detail=f"not tried: {exc}", required=False)
    result = run_selftest(path)
    return Check(
        name="generation",
        ok=result.ok,
        detail=f"{name}: {result.detail}",
        fix=_REBUILD if result.crashed else "run `dca doctor --deep`, then `dca pull` the model again",
    )


def _check_home(paths: Paths) -> Check:
    try:
        paths.ensure_writable(paths.home)
    except DcaError as exc:
        return Check(name="DCA_HOME", ok=False, detail=str(paths.home), fix=str(exc))
    source = "DCA_HOME" if os.environ.get("DCA_HOME") else "default"
    return Check(name="DCA_HOME", ok=True, detail=f"{paths.home} ({source}, writable)")


def _check_models(paths: Paths, deep: bool) -> list[Check]:
    try:
        catalog = Catalog.load(paths)
    except DcaError as exc:
        return [Check(name="catalog", ok=False, detail=str(exc), fix="restore models/catalog.toml from git")]
    checks = []
    for entry in catalog.entries:
        status = check_model(entry, paths, deep=deep)
        label = f"{entry.role} {entry.name}" + (" (default)" if entry.default else "")
        if entry.base:
            label += f" for {entry.base}"
        if status.verified:
            checks.append(Check(name=label, ok=True, detail=f"present and verified, {status.size / 1e6:,.0f} MB"))
        else:
            checks.append(
                Check(
                    name=label,
                    ok=False,
                    detail=status.detail.split(";")[0],
                    fix={
                        "local": f"dca models rm {entry.name}, then dca models add PATH --name {entry.name}",
                        "bundled": f"restore models/{entry.file} from git, or reinstall dca",
                    }.get(entry.source.kind, f"dca pull {entry.name}"),
                    required=entry.default and entry.role not in MADE_FOR_A_BASE,  # dca answers without them
                )
            )
    stale = sorted(p.name for p in paths.partial.glob("*") if p.is_dir()) if paths.partial.is_dir() else []
    if stale:
        checks.append(
            Check(
                name="interrupted pulls",
                ok=False,
                detail=", ".join(stale),
                fix="rerun `dca pull NAME` to finish each (or delete models/.partial)",
                required=False,
            )
        )
    return checks


def _check_indexes(paths: Paths) -> Check:
    names = sorted(p.name for p in paths.indexes.glob("*") if p.is_dir()) if paths.indexes.is_dir() else []
    detail = ", ".join(names) if names else "none yet"
    return Check(name="indexes", ok=True, detail=f"{detail} (in {paths.indexes})", required=False)


def _mem_available() -> int | None:
    """Bytes of memory available to a new process (psutil: Linux, macOS and Windows alike)."""
    import psutil

    try:
        return int(psutil.virtual_memory().available)
    except (OSError, RuntimeError):
        return None


def _cores() -> str:
    import psutil

    return f"{psutil.cpu_count(logical=False) or '?'} physical cores ({os.cpu_count()} logical)"


def _check_resources(paths: Paths) -> list[Check]:
    existing = next(p for p in (paths.home, *paths.home.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    checks = [
        Check(
            name="disk",
            ok=free >= _MIN_FREE_DISK,
            detail=f"{free / 2**30:.1f} GiB free at {existing}",
            fix="free disk space: the default models need about 1.3 GB",
            required=False,
        )
    ]
    ram = _mem_available()
    if ram is not None:
        checks.append(
            Check(
                name="memory",
                ok=ram >= _MIN_FREE_RAM,
                detail=f"{ram / 2**30:.1f} GiB available, {_cores()}",
                fix="close other programs: the default generator needs about 2 GiB",
                required=False,
            )
        )
    return checks


def run_checks_here(*, deep: bool = False) -> list[Check]:
    """Every check for the DCA_HOME in effect; a DCA_HOME that cannot be used is itself a failed check."""
    try:
        paths = Paths.resolve()
    except DcaError as exc:
        return [
            _check_python(),
            _check_llama(),
            Check(name="DCA_HOME", ok=False, detail=os.environ.get("DCA_HOME", "?"), fix=str(exc)),
        ]
    return run_checks(paths, deep=deep)


def _check_settings(paths: Paths) -> list[Check]:
    """The effective settings and where each comes from (flags still override them)."""
    from dca.settings import load_settings, settings_file

    try:
        chosen = load_settings(paths)
    except DcaError as exc:
        return [Check(name="settings", ok=False, detail=str(exc), fix=f"fix or delete {settings_file(paths)}")]

    def shown(name: str, value: object) -> str:
        if value is None:
            return "(catalog default)" if name == "model" else "(none)"
        if name == "api_key":
            return "(set, not shown)"
        if name in ("store", "base_url"):  # a password in the URL is refused; never shown either
            from dca.knowledge.stores import redact_url

            return redact_url(str(value))
        return str(value)

    return [
        Check(
            name=f"setting {name}",
            ok=True,
            detail=f"{shown(name, value)}  [{chosen.sources[name]}]",
            required=False,
        )
        for name, value in chosen.values.items()
    ]


def _check_store(paths: Paths) -> list[Check]:
    """A PostgreSQL store, when one is chosen: reachable, with pgvector."""
    from dca.knowledge.stores import store_url, where

    try:
        url = store_url(paths)
        if url is None:
            return []
        from dca.knowledge.pgstore import connect

        conn = connect(url)
        try:
            version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        finally:
            conn.close()
    except ImportError:
        return [
            Check(
                name="store",
                ok=False,
                detail="psycopg or pgvector is not installed",
                fix="pip install -e '.[postgres]'",
            )
        ]
    except DcaError as exc:
        return [
            Check(name="store", ok=False, detail=str(exc), fix="fix the store URL or the server, or unset DCA_STORE")
        ]
    return [Check(name="store", ok=True, detail=f"{where(paths)}: reachable, pgvector {version}")]


def _check_backend(paths: Paths) -> list[Check]:
    """The openai backend, when chosen: the server reachable, the key taken, the model served."""
    from dca.settings import load_settings

    try:
        chosen = load_settings(paths)
        if chosen["backend"] != "openai":
            return []
        from dca.runtime.remote import load_generator

        generator = load_generator(chosen["model"], paths=paths)
        reply = generator.complete(generator.chat_prompt([{"role": "user", "content": "Say OK."}]), _few_tokens())
    except DcaError as exc:
        return [
            Check(
                name="backend",
                ok=False,
                detail=str(exc),
                fix='start the server, or fix base_url / served_model / DCA_API_KEY (or set backend = "local")',
            )
        ]
    return [
        Check(
            name="backend",
            ok=True,
            detail=f"openai at {generator.base_url}: serves {generator.model}, answered {reply.completion_tokens} "
            f"tokens in {reply.prompt_seconds + reply.decode_seconds:.1f} s",
        )
    ]


def _check_sandbox() -> Check:
    """Programs the model writes (program, mix, --think) run in the sandbox: is it a boundary here?"""
    from dca.reasoning.sandbox import isolation

    try:
        isolated, detail = isolation()
    except DcaError as exc:
        isolated, detail = False, str(exc)
    return Check(
        name="program sandbox",
        ok=isolated,
        detail=detail,
        fix="run dca as root (e.g. in a container) or enable unprivileged user namespaces; until then "
        "only Python-level guards keep model-written programs from your files (docs/reasoning.md)",
        required=False,
    )


def run_checks(paths: Paths, *, deep: bool = False) -> list[Check]:
    """Every doctor check, in report order. ``deep`` rehashes models instead of trusting stamps."""
    return [
        _check_python(),
        _check_llama(),
        _check_home(paths),
        *_check_settings(paths),
        *_check_store(paths),
        *_check_backend(paths),
        *_check_models(paths, deep),
        _check_generation(paths),
        _check_indexes(paths),
        *_check_resources(paths),
        _check_sandbox(),
    ]
