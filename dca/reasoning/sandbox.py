"""Runs a program the model wrote, in a separate, limited process: a security boundary.

Layers, each enough to stop the common attacks on its own where it applies:

1. An AST allow-list (``check_program``): imports only from ``ALLOWED_MODULES``; no
   ``eval``/``exec``/``compile``/``__import__``/``getattr``-style builtins; no dunder names
   or attributes (the ``().__class__.__base__.__subclasses__()`` family).
2. The child process (``_sandbox_child.py``, ``python -I -S``): a new network namespace
   (no interfaces but a down loopback), its own temporary folder as the working directory,
   root dropped to ``nobody`` (RLIMIT_NPROC does not bind root), rlimits on CPU seconds,
   address space, file size, open files and processes (0 new processes), trimmed builtins,
   and an audit hook that refuses files outside its folder, sockets, subprocesses, ctypes
   and unlisted imports.
3. This parent: a wall-clock timeout that kills the child's whole process group, and a cap
   on the bytes read from its output.

What it does not protect against (documented in docs/reasoning.md): bugs in CPython or
in the allowed C modules that let code escape the interpreter, denial of service inside
the limits (a program may burn its CPU seconds and memory), side channels, and, when dca
runs as an ordinary user on a machine without unprivileged user namespaces, a network
namespace (then the audit hook and the import allow-list are what keep sockets out).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dca.errors import ConfigError, SandboxError

ALLOWED_MODULES = (
    "math",
    "cmath",
    "fractions",
    "decimal",
    "itertools",
    "functools",
    "statistics",
    "datetime",
    "re",
    "collections",
    "heapq",
    "bisect",
    "random",
    "string",
    "operator",
    "numbers",
    "calendar",
    "copy",
    "typing",
)
_PRELOAD_EXTRA = {"datetime": ("_strptime",), "calendar": ("_strptime",)}
FORBIDDEN_NAMES = frozenset(
    {
        "__import__",
        "eval",
        "exec",
        "compile",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "breakpoint",
        "input",
        "help",
        "exit",
        "quit",
        "memoryview",
        "__builtins__",
        "__loader__",
        "__spec__",
    }
)
_CHILD = Path(__file__).with_name("_sandbox_child.py")
_NOBODY = 65534


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Limits for one program run."""

    timeout_s: float = 10.0  # wall clock, then the process group is killed
    cpu_s: int = 5  # CPU seconds (RLIMIT_CPU)
    memory_mb: int = 512  # address space (RLIMIT_AS)
    max_output_bytes: int = 64_000  # stdout read back; more kills the program
    max_file_bytes: int = 1_000_000  # largest file it may write in its folder (RLIMIT_FSIZE)

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.cpu_s < 1:
            raise ConfigError(f"sandbox timeouts must be positive, got {self.timeout_s} s / {self.cpu_s} CPU s")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory must be at least 64 MB, got {self.memory_mb}")
        if self.max_output_bytes < 1 or self.max_file_bytes < 0:
            raise ConfigError("sandbox output and file limits must be positive")


@dataclass(frozen=True, kw_only=True)
class ProgramResult:
    """What a program printed, or why it did not finish."""

    ok: bool
    stdout: str
    error: str  # one line for the user (and for the model's repair), "" when ok
    kind: str  # ok | rejected | error | timeout | cpu | memory | output | forbidden
    seconds: float

    @property
    def last_line(self) -> str:
        lines = [line.strip() for line in self.stdout.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


def check_program(code: str) -> list[str]:
    """Problems that keep ``code`` from running in the sandbox (empty: it may run).

    >>> check_program("import math\\nprint(math.sqrt(16))")
    []
    >>> check_program("import os")
    ["line 1: import of 'os' is not allowed (allowed: math, cmath, fractions, ...)"]
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: SyntaxError: {exc.msg}"]
    problems = []
    allowed = set(ALLOWED_MODULES)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if getattr(node, "level", 0) or name.split(".")[0] not in allowed:
                    problems.append(
                        f"line {line}: import of {name or '.'!r} is not allowed (allowed: math, cmath, fractions, ...)"
                    )
        elif isinstance(node, ast.Name) and (node.id in FORBIDDEN_NAMES or _dunder(node.id)):
            problems.append(f"line {line}: {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            problems.append(f"line {line}: private attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.alias) and node.asname and _dunder(node.asname):
            problems.append(f"line {line}: {node.asname!r} is not allowed")
    return problems


def _dunder(name: str) -> bool:
    return name.startswith("__") and name != "__name__"


def _imports(code: str) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return found


def run_program(code: str, config: SandboxConfig | None = None) -> ProgramResult:
    """Check ``code`` and run it in the sandbox; never raises for what the program does."""
    problems = check_program(code)
    if problems:
        return ProgramResult(ok=False, stdout="", error="; ".join(problems[:3]), kind="rejected", seconds=0.0)
    return _run(code, config or SandboxConfig(), guards=True)


def _run(code: str, config: SandboxConfig, *, guards: bool) -> ProgramResult:
    """Run ``code`` in the child. ``guards=False`` leaves only the OS limits (tests of that layer)."""
    preload = sorted({m for name in _imports(code) for m in (name, *_PRELOAD_EXTRA.get(name, ()))})
    workdir = Path(tempfile.mkdtemp(prefix="dca-sandbox-"))
    try:
        if os.geteuid() == 0:
            os.chown(workdir, _NOBODY, _NOBODY)
        settings = {
            "workdir": str(workdir),
            "modules": list(ALLOWED_MODULES),
            "forbidden": sorted(FORBIDDEN_NAMES),  # builtins removed (open is replaced by a guarded one)
            "preload": preload,
            "uid": _NOBODY,
            "gid": _NOBODY,
            "cpu_s": config.cpu_s,
            "memory_bytes": config.memory_mb * 1024 * 1024,
            "file_bytes": config.max_file_bytes,
            "guards": guards,
        }
        return _supervise(code, settings, config)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _supervise(code: str, settings: dict[str, object], config: SandboxConfig) -> ProgramResult:
    started = time.perf_counter()
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", str(_CHILD), json.dumps(settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(settings["workdir"]),
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,  # its own process group, killed as a whole
        )
    except OSError as exc:
        raise SandboxError(f"could not start the program sandbox ({exc})") from None
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    try:
        child.stdin.write(code.encode("utf-8"))
        child.stdin.close()
    except BrokenPipeError:
        pass
    out, err = bytearray(), bytearray()
    kind = ""
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ, out)
    selector.register(child.stderr, selectors.EVENT_READ, err)
    deadline = started + config.timeout_s
    try:
        while selector.get_map():
            left = deadline - time.perf_counter()
            if left <= 0:
                kind = "timeout"
                break
            for key, _ in selector.select(timeout=min(left, 0.5)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is err and len(err) > 16_000:
                    del err[:-8_000]  # keep the tail: the error is at the end
            if len(out) > config.max_output_bytes:
                kind = "output"
                break
    finally:
        selector.close()
        if kind:
            _kill(child)
        try:
            code_ = child.wait(timeout=max(0.1, deadline - time.perf_counter()) + 2)
        except subprocess.TimeoutExpired:
            _kill(child)
            code_ = child.wait()
            kind = kind or "timeout"
        child.stdout.close()
        child.stderr.close()
    seconds = time.perf_counter() - started
    stdout = bytes(out[: config.max_output_bytes if kind != "output" else 2000]).decode("utf-8", errors="replace")
    message = bytes(err).decode("utf-8", errors="replace").strip().splitlines()
    last = message[-1] if message else ""
    if kind == "timeout":
        return _failed(stdout, f"the program did not finish in {config.timeout_s:g} s (wall clock)", kind, seconds)
    if kind == "output":
        return _failed(stdout, f"the program printed more than {config.max_output_bytes} bytes", kind, seconds)
    if code_ == 0:
        return ProgramResult(ok=True, stdout=stdout, error="", kind="ok", seconds=seconds)
    if code_ in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in last:
        return _failed(stdout, f"the program used more than {config.cpu_s} s of CPU time", "cpu", seconds)
    if code_ == 3 or "MemoryError" in last or code_ in (-signal.SIGSEGV, -signal.SIGABRT):
        return _failed(stdout, f"the program ran out of memory (limit {config.memory_mb} MB)", "memory", seconds)
    if code_ == 4:
        return _failed(stdout, last, "forbidden", seconds)
    if code_ == 2:
        raise SandboxError(f"the program sandbox could not start: {last}")
    if code_ == -signal.SIGXFSZ:
        return _failed(stdout, f"the program wrote a file over {config.max_file_bytes} bytes", "forbidden", seconds)
    return _failed(stdout, last or f"the program failed (exit code {code_})", "error", seconds)


def _failed(stdout: str, error: str, kind: str, seconds: float) -> ProgramResult:
    return ProgramResult(ok=False, stdout=stdout, error=error, kind=kind, seconds=seconds)


def _kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
