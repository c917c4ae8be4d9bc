"""The sandboxed side of ``dca.reasoning.sandbox``: run as a script, never imported by dca.

Started as ``python -I -S _sandbox_child.py SETTINGS_JSON`` with the program on stdin. In
order: import the modules the program may use (afterwards the interpreter cannot read its
own library), leave the network namespace, move into the work folder, drop root to an
unprivileged user, set resource limits, install an audit hook that refuses files outside
the work folder, sockets, processes, ctypes and unlisted imports, then run the program with
trimmed builtins. Exit codes: 0 ok, 1 the program raised, 2 setup failed, 3 out of memory,
4 a forbidden operation.
"""

import builtins
import contextlib
import ctypes
import importlib
import json
import os
import resource
import sys
import traceback
from typing import Any

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_BLOCKED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.putenv",
    "os.unsetenv",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.listdir",
    "os.scandir",
    "os.chdir",
    "ctypes.",
    "sys._getframe",
    "sys.setprofile",
    "sys.settrace",
    "gc.get_",
    "code.__new__",
    "function.__new__",
    "marshal.",
    "pickle.",
    "webbrowser.",
    "urllib.",
    "ftplib.",
    "smtplib.",
    "http.",
)


def _fail(code: int, message: str) -> None:
    sys.stderr.write(message.strip() + "\n")
    sys.stderr.flush()
    os._exit(code)


def _leave_network() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    return os.geteuid() != 0 and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0


def _drop_privileges(uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        _fail(2, "sandbox: could not drop root privileges")


def _limit(settings: dict) -> None:
    cpu = int(settings["cpu_s"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    memory = int(settings["memory_bytes"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    size = int(settings["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # no new processes (binds: we are not root now)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))


def _audit(workdir: str, allowed: frozenset) -> list:
    started: list = []

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return path <= 2
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == workdir or real.startswith(workdir + os.sep)

    def hook(event: str, args: tuple) -> None:
        if not started:
            return
        if event == "open":
            if not inside(args[0]):
                raise PermissionError(f"the sandbox does not allow opening {args[0]!r}: only files in its own folder")
        elif event == "import":
            top = str(args[0]).split(".")[0]
            if top not in allowed:
                raise ImportError(f"the sandbox does not allow importing {args[0]!r}")
        elif event in ("exec", "compile"):
            if event == "exec" and len(started) == 1:
                started.append("program")  # the one exec allowed: the program itself
                return
            raise PermissionError(f"the sandbox does not allow {event}")
        elif event.startswith(_BLOCKED_EVENTS) or event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir"):
            if event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir") and all(
                inside(a) for a in args if isinstance(a, (str, bytes))
            ):
                return
            raise PermissionError(f"the sandbox does not allow {event}")

    sys.addaudithook(hook)
    return started


def _safe_builtins(allowed: frozenset, workdir: str, forbidden: frozenset) -> dict:
    safe = {name: value for name, value in vars(builtins).items() if name not in forbidden}
    real_import = builtins.__import__
    real_open = builtins.open

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or name.split(".")[0] not in allowed:
            raise ImportError(f"the sandbox does not allow importing {name!r}")
        return real_import(name, globals, locals, fromlist, level)

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, int):
            raise PermissionError("the sandbox does not allow opening file descriptors")
        path = os.path.realpath(os.path.join(workdir, os.fsdecode(file)))
        if not (path == workdir or path.startswith(workdir + os.sep)):
            raise PermissionError(f"the sandbox does not allow opening {file!r}: only files in its own folder")
        return real_open(path, mode, *args, **kwargs)

    safe["__import__"] = guarded_import
    safe["open"] = guarded_open
    return safe


def main() -> None:
    settings = json.loads(sys.argv[1])
    code = sys.stdin.read()
    sys.stdin.close()
    sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
    guards = bool(settings.get("guards", True))
    allowed = frozenset(settings["modules"])
    for name in settings["preload"]:
        with contextlib.suppress(ImportError):  # the program's own import will report it
            importlib.import_module(name)
    program = compile(code, "<program>", "exec")
    workdir = os.path.realpath(settings["workdir"])
    _leave_network()
    os.chdir(workdir)
    try:
        _drop_privileges(int(settings["uid"]), int(settings["gid"]))
        _limit(settings)
    except (OSError, ValueError) as exc:
        _fail(2, f"sandbox: setup failed ({exc})")
    namespace = {"__name__": "__main__", "__builtins__": vars(builtins)}
    if guards:
        started = _audit(workdir, allowed)
        namespace["__builtins__"] = _safe_builtins(allowed, workdir, frozenset(settings["forbidden"]))
        started.append(True)
    try:
        exec(program, namespace)
    except MemoryError:
        _fail(3, "MemoryError: the program ran out of memory")
    except (PermissionError, ImportError) as exc:
        if "sandbox" in str(exc):
            _fail(4, f"{type(exc).__name__}: {exc}")
        _fail(1, _last_line(exc))
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(0 if exc.code in (None, 0) else 1)
    except BaseException as exc:  # the program's own error, reported back for a repair
        _fail(1, _last_line(exc))
    sys.stdout.flush()
    os._exit(0)


def _last_line(exc: BaseException) -> str:
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<program>":
            line = f"line {frame.lineno}: "
    return f"{line}{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    main()
