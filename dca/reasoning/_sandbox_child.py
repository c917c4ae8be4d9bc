"""The sandboxed side of ``dca.reasoning.sandbox``: run as a script, never imported by dca.

Started as ``python -I -S _sandbox_child.py SETTINGS_JSON`` with the program on stdin. In
order: import the modules the program may use (allowed third-party ones from the folders the
parent names; afterwards nothing more can be imported), leave the network namespace, mount a
size-capped tmpfs of its own on the work folder (so a program cannot fill the disk), chroot
into the parent's temporary root so that only the work folder is visible, drop root to an
unprivileged user, set resource limits, then run the program with trimmed builtins under an
audit hook that refuses files outside the work folder, sockets, processes, ctypes, unlisted
imports, compiling code that fails the static check, and frame access. Exit codes: 0 ok, 1
the program raised (its traceback on stderr), 2 setup failed, 3 out of memory, 4 a forbidden
operation.
"""

import builtins
import contextlib
import ctypes
import importlib
import json
import os
import resource
import sys
import types
from typing import Any

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
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
    "sys._current",
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
    with contextlib.suppress(Exception):  # what the program printed before it failed
        sys.stdout.flush()
    sys.stderr.write(message.strip() + "\n")
    sys.stderr.flush()
    os._exit(code)


def _leave_network() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return True
    return os.geteuid() != 0 and libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0


def _own_disk(workdir: str, settings: dict) -> bool:
    """Mount a tmpfs of ``disk_bytes`` (and ``max_files`` inodes) on the work folder, in a mount
    namespace of the child's own: the total a program can write, whatever the number of files.
    False where mounts are not allowed (no CAP_SYS_ADMIN, no user namespaces): then only the
    per-file size limit and the audit hook's count of files opened for writing remain."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        return False
    # private first, so the mount below never propagates back to the machine's namespace
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    options = "size={},nr_inodes={},mode=0700,uid={},gid={}".format(
        int(settings["disk_bytes"]), int(settings["max_files"]) + 1, int(settings["uid"]), int(settings["gid"])
    )
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    return libc.mount(b"tmpfs", os.fsencode(workdir), b"tmpfs", flags, options.encode()) == 0


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


def _enter_folder(root: str, workdir: str) -> str:
    """Move into the work folder and make ``root`` (its parent) the whole visible file system.

    chroot needs CAP_SYS_CHROOT: root has it, and so does an ordinary user inside the user
    namespace ``_leave_network`` made. Returns the work folder as the program sees it; without
    a chroot (no user namespaces) it is the real path and only the audit hook keeps the
    program to it.
    """
    os.chdir(workdir)
    try:
        os.chroot(root)
    except OSError:
        return workdir
    inner = os.path.normpath("/" + os.path.relpath(workdir, root))
    os.chdir(inner)
    return inner


def _load_check() -> Any:
    """The static check of ``_sandbox_check.py`` beside this file (``-I`` leaves this folder off
    the path)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    try:
        return importlib.import_module("_sandbox_check").static_problems
    finally:
        sys.path.remove(here)


def _audit(
    workdir: str, allowed: frozenset, forbidden: frozenset, program: Any, check: Any, max_writes: int | None
) -> None:
    """Install the audit hook, just before the program runs.

    It keeps no state the program could change: everything it reads is bound here. Code that
    allowed libraries compile while the program runs (sympy builds polynomial functions from
    source) must pass the same static check as the program, or it is refused; the check's own
    parse is recognised by a file name the program cannot know. Reading frames (``tb_frame``,
    ``gi_frame``: the ``object.__getattr__`` event) is refused, so a program cannot walk up to
    this module's frames or data; a function's ``__code__`` and defaults may be read (sympy's
    dsolve inspects signatures), and no new code object can be made (``code.__new__``).
    ``max_writes`` (only where the work folder has no tmpfs of its own) caps how many times a
    file may be opened for writing, so the per-file size limit bounds the total.
    """
    secret = f"<check-{os.urandom(16).hex()}>"
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    blocked, files = _BLOCKED_EVENTS, ("os.remove", "os.rename", "os.rmdir", "os.mkdir")
    prefix = workdir.rstrip(sep) + sep
    writes = [0]
    write_flags = _WRITE_FLAGS

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return path <= 2
        try:
            real = realpath(fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == workdir or real.startswith(prefix)

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            if not inside(args[0]):
                raise PermissionError(f"the sandbox does not allow opening {args[0]!r}: only files in its own folder")
            mode, flags = args[1], args[2]
            writing = any(c in str(mode or "") for c in "wax+") or bool(int(flags or 0) & write_flags)
            if max_writes is not None and writing and not isinstance(args[0], int):
                writes[0] += 1
                if writes[0] > max_writes:
                    raise PermissionError(f"the sandbox does not allow writing more than {max_writes} files")
        elif event == "import":
            if str(args[0]).split(".")[0] not in allowed:
                raise ImportError(f"the sandbox does not allow importing {args[0]!r}")
        elif event == "compile":
            source, name = args[0], args[1]
            if name == secret:
                return
            if not isinstance(source, (str, bytes)):
                raise PermissionError("the sandbox does not allow compile of anything but source text")
            text = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
            if check(text, allowed, forbidden, filename=secret):
                raise PermissionError("the sandbox does not allow compile of code that fails its check")
        elif event == "object.__getattr__":
            if args[1].endswith("_frame") or args[1].startswith("f_"):  # frames; a function's code may be read
                raise PermissionError(f"the sandbox does not allow reading {args[1]!r}")
        elif event in files:
            if not all(inside(a) for a in args if isinstance(a, (str, bytes))):
                raise PermissionError(f"the sandbox does not allow {event}")
        elif event.startswith(blocked):
            raise PermissionError(f"the sandbox does not allow {event}")

    sys.addaudithook(hook)


def _module_views(allowed: frozenset) -> Any:
    """A function giving the program a view of a module instead of the module: its public
    names only, with every module it holds that is not allowed left out (``typing.sys``,
    ``statistics.sys``, ``random._os``) and the allowed ones as views in turn. The module's
    own functions still see their real globals; the program sees only the view."""
    views: dict = {}

    def view(module: Any) -> Any:
        name = module.__name__
        if name in views:
            return views[name]
        shown = types.ModuleType(name, getattr(module, "__doc__", None))
        views[name] = shown  # before the names: modules that hold each other
        for key, value in list(vars(module).items()):
            if key.startswith("_"):
                continue
            if isinstance(value, types.ModuleType):
                if value.__name__.split(".")[0] not in allowed:
                    continue
                value = view(value)
            vars(shown)[key] = value
        public = vars(module).get("__all__")
        if isinstance(public, (list, tuple)):
            vars(shown)["__all__"] = [key for key in public if key in vars(shown)]
        return shown

    return view


def _safe_builtins(allowed: frozenset, workdir: str, forbidden: frozenset) -> dict:
    safe = {name: value for name, value in vars(builtins).items() if name not in forbidden}
    real_import = builtins.__import__
    real_open = builtins.open
    view = _module_views(allowed)

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level != 0 or name.split(".")[0] not in allowed:
            raise ImportError(f"the sandbox does not allow importing {name!r}")
        module = real_import(name, globals, locals, fromlist, level)
        for key in fromlist or ():
            value = vars(module).get(key)
            if key.startswith("_") or (
                isinstance(value, types.ModuleType) and value.__name__.split(".")[0] not in allowed
            ):
                raise ImportError(f"the sandbox does not allow importing {key!r} from {name!r}")
        return view(module)

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
    paths = [str(path) for path in settings.get("paths", [])]  # allowed third-party modules' folder
    sys.path.extend(paths)
    for name in settings["preload"]:
        with contextlib.suppress(ImportError):  # the program's own import will report it
            importlib.import_module(name)
    for path in paths:  # nothing else from there can be imported later
        sys.path.remove(path)
    program = compile(code, "<program>", "exec")
    check = _load_check()
    _leave_network()
    workdir = os.path.realpath(settings["workdir"])
    own_disk = _own_disk(workdir, settings)
    try:
        workdir = _enter_folder(os.path.realpath(settings.get("root", workdir)), workdir)
        _drop_privileges(int(settings["uid"]), int(settings["gid"]))
        _limit(settings)
    except (OSError, ValueError) as exc:
        _fail(2, f"sandbox: setup failed ({exc})")
    namespace = {"__name__": "__main__", "__builtins__": vars(builtins)}
    if guards:
        forbidden = frozenset(settings["forbidden"])
        namespace["__builtins__"] = _safe_builtins(allowed, workdir, forbidden)
        max_writes = None if own_disk else max(1, int(settings["disk_bytes"]) // max(1, int(settings["file_bytes"])))
        _audit(workdir, allowed, forbidden, program, check, max_writes)
    try:
        exec(program, namespace)
    except MemoryError:
        _fail(3, "MemoryError: the program ran out of memory")
    except (PermissionError, ImportError) as exc:
        if "sandbox" in str(exc):
            _fail(4, f"{type(exc).__name__}: {exc}")
        _traceback(exc)
    except SystemExit as exc:
        sys.stdout.flush()
        os._exit(0 if exc.code in (None, 0) else 1)
    except BaseException as exc:  # the program's own error, reported back for a repair
        _traceback(exc)
    sys.stdout.flush()
    os._exit(0)


def _traceback(exc: BaseException) -> None:
    """The program's traceback on stderr, written by the interpreter's C code (it reads frames
    without the audited attribute access); the parent takes the line and the error from it."""
    sys.stdout.flush()
    sys.__excepthook__(type(exc), exc, exc.__traceback__)
    sys.stderr.flush()
    os._exit(1)


if __name__ == "__main__":
    main()
