"""Runs a program the model wrote, in a separate, limited process: a security boundary.

Layers:

1. An AST allow-list (``check_program``): imports only from ``ALLOWED_MODULES``; no
   ``eval``/``exec``/``compile``/``__import__``/``getattr``-style builtins; no dunder names
   or attributes (the ``().__class__.__base__.__subclasses__()`` family).
2. The child process (``_sandbox_child.py``, ``python -I -S``), the boundary itself: a new
   network namespace (no interfaces but a down loopback); a chroot into its own temporary
   root, where the work folder is the only thing it can read or write; root dropped to a
   user id of its own, used by no other process (RLIMIT_NPROC does not bind root; ``nobody``
   where the id cannot be used, e.g. a container that maps only 65,536 ids); a tmpfs of its own,
   capped in bytes and files, as the work folder (the total it may write); rlimits on CPU
   seconds, address space, file size, open files and processes (0 new processes).
3. In the child, Python-level guards in depth: trimmed builtins and an audit hook that
   refuses files outside its folder, sockets, subprocesses, ctypes, unlisted imports, frame
   access, and compiling code that fails the static check. A determined program can fool
   parts of this layer (it reaches real objects through ``operator.attrgetter`` and patches
   what the hook calls: tests/test_sandbox.py does it), which is why layer 2 must hold alone.
4. This parent: a wall-clock timeout that kills the child's whole process group, and a cap
   on the bytes read from its output.

What it does not protect against (documented in docs/reasoning.md): bugs in CPython, the
kernel or the allowed C modules that let code escape, denial of service inside the limits
(a program may burn its CPU seconds and memory), side channels, signals to other processes
of the ``nobody`` user where the sandbox had to fall back to it, and, when dca runs as an ordinary user on a machine without
unprivileged user namespaces, no network namespace and no chroot: then only layer 3 keeps the
program from your files and the network, and it is not a boundary.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import os
import re
import secrets
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
from dca.reasoning._sandbox_check import static_problems

# Beyond the standard library: symbolic maths, which competition-maths programs reach for (16 of
# the first 100 MATH-500 programs imported sympy). The child runs ``python -I -S``, so the parent
# passes their folder for the preload only. sympy's own ways to run code (sympify/parse_expr and
# lambdify evaluate strings, preview starts processes, modules hold os and sys) meet the audit
# hook like the program itself would: tests/test_sandbox.py tries each.
THIRD_PARTY_MODULES = ("sympy", "mpmath")
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
    *THIRD_PARTY_MODULES,
)
# Modules imported lazily by the allowed ones, loaded before the guards (which refuse imports
# that read files later). sympy's: what solve, simplify, integrate, solveset, Eq and the like
# import on first use (measured with sys.modules before and after).
_PRELOAD_EXTRA = {
    "datetime": ("_strptime",),
    "calendar": ("_strptime",),
    "sympy": (
        "sympy.assumptions.wrapper",
        "sympy.combinatorics",
        "sympy.concrete.delta",
        "sympy.integrals.heurisch",
        "sympy.integrals.manualintegrate",
        "sympy.integrals.prde",
        "sympy.integrals.rde",
        "sympy.integrals.risch",
        "sympy.physics.units",
        "sympy.polys.domains.old_fractionfield",
        "sympy.polys.domains.old_polynomialring",
        "sympy.polys.polymatrix",
        "sympy.sets.handlers.functions",
        "sympy.sets.handlers.issubset",
        "sympy.sets.setexpr",
        "sympy.tensor.tensor",
    ),
}
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
_OWN_UIDS = (2_100_000_000, 1_000_000)  # first id, count: one drawn per run, far above login and subuid ranges
_PROGRAM_LINE = re.compile(r'File "<program>", line (\d+)')
_DISK_FULL = re.compile(r"\[Errno (28|122)\]")  # ENOSPC (bytes or files), EDQUOT


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """Limits for one program run."""

    timeout_s: float = 10.0  # wall clock, then the process group is killed
    cpu_s: int = 5  # CPU seconds (RLIMIT_CPU)
    memory_mb: int = 512  # address space (RLIMIT_AS)
    max_output_bytes: int = 64_000  # stdout read back; more kills the program
    max_file_bytes: int = 1_000_000  # largest file it may write in its folder (RLIMIT_FSIZE)
    max_disk_bytes: int = 16_000_000  # all it may write in its folder together (its own tmpfs)
    max_files: int = 256  # files and folders it may create there

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.cpu_s < 1:
            raise ConfigError(f"sandbox timeouts must be positive, got {self.timeout_s} s / {self.cpu_s} CPU s")
        if self.memory_mb < 64:
            raise ConfigError(f"sandbox memory must be at least 64 MB, got {self.memory_mb}")
        if self.max_output_bytes < 1 or self.max_file_bytes < 0 or self.max_disk_bytes < 1 or self.max_files < 1:
            raise ConfigError(
                f"sandbox output and file limits must be positive, got max_output_bytes={self.max_output_bytes}, "
                f"max_file_bytes={self.max_file_bytes}, max_disk_bytes={self.max_disk_bytes}, max_files={self.max_files}"
            )


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
    return static_problems(code, ALLOWED_MODULES, FORBIDDEN_NAMES)


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
    preload = sorted({m for name in _imports(code) for m in (name, *_PRELOAD_EXTRA.get(name.split(".")[0], ()))})
    root = Path(tempfile.mkdtemp(prefix="dca-sandbox-"))  # the child's whole file system (chroot)
    try:
        root.chmod(0o711)  # the unprivileged child may pass through it, not list or write it
        workdir = root / "work"
        workdir.mkdir(mode=0o700)
        uid = _NOBODY
        if os.geteuid() == 0:
            uid = _OWN_UIDS[0] + secrets.randbelow(_OWN_UIDS[1])
            try:  # an id of its own: no other process to signal, a process count of its own
                os.chown(workdir, uid, uid)
            except OSError:  # not mapped here (a user namespace with a short id range)
                uid = _NOBODY
                os.chown(workdir, uid, uid)
        settings = {
            "root": str(root),
            "workdir": str(workdir),
            "modules": list(ALLOWED_MODULES),
            "forbidden": sorted(FORBIDDEN_NAMES),  # builtins removed (open is replaced by a guarded one)
            "preload": preload,
            "paths": _library_paths(preload),
            "uid": uid,
            "gid": uid,
            "cpu_s": config.cpu_s,
            "memory_bytes": config.memory_mb * 1024 * 1024,
            "file_bytes": config.max_file_bytes,
            "disk_bytes": config.max_disk_bytes,
            "max_files": config.max_files,
            "guards": guards,
        }
        return _supervise(code, settings, config)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _library_paths(modules: list[str]) -> list[str]:
    """Folders the child needs on its path to preload the allowed third-party ``modules``
    (none for a standard-library program; a module that is not installed is left for the
    program's own import to report)."""
    if not any(name.split(".")[0] in THIRD_PARTY_MODULES for name in modules):
        return []
    paths: list[str] = []
    for top in THIRD_PARTY_MODULES:  # sympy needs mpmath too
        spec = importlib.util.find_spec(top)
        for location in (spec.submodule_search_locations or []) if spec else []:
            folder = str(Path(location).parent)
            if folder not in paths:
                paths.append(folder)
    return paths


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
    if code_ == 1 and _DISK_FULL.search(last):
        return _failed(
            stdout,
            f"the program wrote more than its folder holds ({config.max_disk_bytes} bytes)",
            "forbidden",
            seconds,
        )
    if code_ == 1:
        return _failed(stdout, _program_error(message) or f"the program failed (exit code {code_})", "error", seconds)
    return _failed(stdout, last or f"the program failed (exit code {code_})", "error", seconds)


def _program_error(traceback: list[str]) -> str:
    """``line N: Type: message`` from the traceback the child wrote: the deepest line of the
    program itself, and the error (the traceback's last line)."""
    error = traceback[-1].strip() if traceback else ""
    lines = [match.group(1) for text in traceback if (match := _PROGRAM_LINE.match(text.strip()))]
    return f"line {lines[-1]}: {error}" if lines and error else error


def _failed(stdout: str, error: str, kind: str, seconds: float) -> ProgramResult:
    return ProgramResult(ok=False, stdout=stdout, error=error, kind=kind, seconds=seconds)


def _kill(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


_ISOLATION_PROBE = """
import os, socket
disk = os.statvfs('.')
print(os.path.exists('/etc'), [name for _, name in socket.if_nameindex()] == ['lo'], os.getuid(), disk.f_blocks * disk.f_frsize)
"""


def isolation() -> tuple[bool, str]:
    """Whether programs run isolated here (chroot and network namespace), and in what words."""
    result = _run(_ISOLATION_PROBE, SandboxConfig(), guards=False)
    if not result.ok:
        return False, f"the sandbox could not run a probe ({result.error})"
    sees_machine, own_network, uid, disk = result.last_line.split()
    capped = int(disk) <= SandboxConfig().max_disk_bytes + 1_000_000  # tmpfs rounds up to pages
    found = [
        "chroot" if sees_machine == "False" else "no chroot (the machine's files are visible)",
        "own network namespace" if own_network == "True" else "no network namespace",
        _user_words(int(uid)),
        "a size-capped folder" if capped else "no cap on the bytes written (only on each file)",
    ]
    return sees_machine == "False" and own_network == "True" and capped, ", ".join(found)


def _user_words(uid: int) -> str:
    if _OWN_UIDS[0] <= uid < _OWN_UIDS[0] + _OWN_UIDS[1]:
        return "a user id of its own"
    return "user nobody" if uid == _NOBODY else f"runs as uid {uid}"
