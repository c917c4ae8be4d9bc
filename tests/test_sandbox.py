"""The program sandbox is a security boundary: hostile programs are stopped with a clear error.

Each attack is tried twice where it matters: through ``run_program`` (every layer) and with
the Python-level guards off (``_run(guards=False)``), to show the OS layer (unprivileged
user, rlimits, network namespace) stops it on its own.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dca.reasoning.sandbox import SandboxConfig, _run, check_program, run_program

FAST = SandboxConfig(timeout_s=5, cpu_s=1, memory_mb=256)


def test_a_plain_program_runs_and_its_output_is_read() -> None:
    result = run_program(
        "from fractions import Fraction\nimport math\nprint(Fraction(3, 4) * 4)\nprint(math.comb(5, 2))"
    )
    assert result.ok and result.kind == "ok" and result.last_line == "10"


def test_an_exception_is_one_line_with_its_line_number() -> None:
    result = run_program("x = 1\ny = x / 0\nprint(y)")
    assert not result.ok and result.kind == "error"
    assert result.error == "line 2: ZeroDivisionError: division by zero"


def test_an_infinite_loop_is_stopped_by_the_cpu_limit() -> None:
    started = time.monotonic()
    result = run_program("while True:\n    pass", FAST)
    assert result.kind == "cpu" and "CPU time" in result.error
    assert time.monotonic() - started < 5


def test_a_sleeping_program_is_stopped_by_the_wall_clock() -> None:
    # The guards forbid `time`; with them off a sleep burns no CPU, so only the wall clock stops it.
    started = time.monotonic()
    result = _run("import time\ntime.sleep(60)", SandboxConfig(timeout_s=1, cpu_s=5), guards=False)
    assert result.kind == "timeout" and "did not finish in 1 s" in result.error
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("guards", [True, False])
def test_a_fork_bomb_cannot_fork(guards: bool) -> None:
    code = "import os\nwhile True:\n    os.fork()"
    result = run_program(code, FAST) if guards else _run(code, FAST, guards=False)
    assert not result.ok
    if guards:
        assert result.kind == "rejected" and "'os' is not allowed" in result.error
    else:  # RLIMIT_NPROC = 0 for an unprivileged user: the first fork fails
        assert "Resource temporarily unavailable" in result.error or "BlockingIOError" in result.error


def test_a_ten_gigabyte_allocation_runs_out_of_memory() -> None:
    result = run_program("x = bytearray(10 * 1024 ** 3)\nprint(len(x))", FAST)
    assert result.kind == "memory" and "out of memory (limit 256 MB)" in result.error


def test_printing_gigabytes_is_cut_off() -> None:
    started = time.monotonic()
    result = run_program("while True:\n    print('x' * 100000)", SandboxConfig(max_output_bytes=10_000))
    assert result.kind == "output" and "more than 10000 bytes" in result.error
    assert len(result.stdout) <= 2000 and time.monotonic() - started < 5


@pytest.mark.parametrize("path", ["/etc/passwd", "~/.ssh/id_rsa", "../../etc/passwd"])
def test_reading_files_outside_its_folder_is_refused(path: str) -> None:
    result = run_program(f"print(open({os.path.expanduser(path)!r}).read())", FAST)
    assert not result.ok and result.kind == "forbidden" and "only files in its own folder" in result.error
    assert "root:" not in result.stdout


def test_the_os_layer_alone_keeps_root_files_unreadable() -> None:
    secret = Path("/root/.dca-sandbox-test-secret")
    if os.geteuid() != 0:
        pytest.skip("needs root to place a root-only file")
    secret.write_text("top secret")
    secret.chmod(0o600)
    try:
        result = _run(f"print(open({str(secret)!r}).read())", FAST, guards=False)
        assert not result.ok and "top secret" not in result.stdout
        # not there at all inside the chroot; without one, the unprivileged user may not read it
        assert "No such file" in result.error or "Permission denied" in result.error
    finally:
        secret.unlink()


@pytest.mark.parametrize("guards", [True, False])
def test_a_socket_cannot_reach_the_network(guards: bool) -> None:
    code = "import socket\ns = socket.socket()\ns.settimeout(2)\ns.connect(('1.1.1.1', 80))\nprint('connected')"
    result = run_program(code, FAST) if guards else _run(code, FAST, guards=False)
    assert not result.ok and "connected" not in result.stdout
    if not guards:  # its own network namespace has no route anywhere (or, without one, nothing answers)
        assert any(word in result.error.lower() for word in ("unreachable", "errno", "timed out"))


def test_writing_outside_its_folder_is_refused_and_inside_is_allowed(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    result = run_program(f"open({str(target)!r}, 'w').write('x')", FAST)
    assert result.kind == "forbidden" and not target.exists()
    unguarded = _run(f"open({str(target)!r}, 'w').write('x')", FAST, guards=False)
    assert not unguarded.ok and not target.exists()  # tmp_path belongs to root; the child is nobody
    inside = run_program("open('notes.txt', 'w').write('42')\nprint(open('notes.txt').read())", FAST)
    assert inside.ok and inside.last_line == "42"


@pytest.mark.parametrize("module", ["os", "subprocess", "ctypes", "socket", "sys", "importlib", "shutil", "pathlib"])
def test_importing_dangerous_modules_is_refused(module: str) -> None:
    result = run_program(f"import {module}", FAST)
    assert result.kind == "rejected" and f"'{module}' is not allowed" in result.error
    result = run_program(f"from {module} import *", FAST)
    assert result.kind == "rejected"


@pytest.mark.parametrize(
    "code",
    [
        "__import__('os').system('id')",
        "eval(\"__import__('os')\")",
        "exec('import os')",
        "compile('import os', 'x', 'exec')",
        "getattr(__builtins__, 'eval')('1')",
        "().__class__.__base__.__subclasses__()",
        "[c for c in ().__class__.__mro__[1].__subclasses__() if c.__name__ == 'Popen']",
        "globals()['__builtins__']",
        "f = (lambda: 0).__globals__",
        "import math as m\nm.__loader__",
        "from . import x",
        "breakpoint()",
    ],
)
def test_builtin_and_dunder_tricks_are_rejected(code: str) -> None:
    assert check_program(code)
    result = run_program(code, FAST)
    assert result.kind == "rejected" and not result.ok


def test_runtime_guards_hold_when_the_static_check_is_bypassed() -> None:
    # A string-built import goes past the AST check's view only at run time: the guarded
    # __import__ and the audit hook refuse it there.
    result = _run("m = __import__('o' + 's')\nprint(m.getcwd())", FAST, guards=True)
    assert result.kind == "forbidden" and "not allow importing 'os'" in result.error
    result = _run("eval('1 + 1')", FAST, guards=True)
    assert not result.ok


def test_a_syntax_error_is_reported_not_run() -> None:
    result = run_program("print(1 +)")
    assert result.kind == "rejected" and "SyntaxError" in result.error


def test_nothing_is_left_behind() -> None:
    import tempfile

    before = set(Path(tempfile.gettempdir()).glob("dca-sandbox-*"))
    run_program("open('a.txt', 'w').write('1')\nprint(1)", FAST)
    run_program("while True:\n    pass", FAST)
    assert set(Path(tempfile.gettempdir()).glob("dca-sandbox-*")) == before


def test_limits_are_validated() -> None:
    from dca.errors import ConfigError

    with pytest.raises(ConfigError, match="timeouts must be positive"):
        SandboxConfig(timeout_s=0)
    with pytest.raises(ConfigError, match="at least 64 MB"):
        SandboxConfig(memory_mb=1)


def _chroot_available() -> bool:
    probe = _run("print(open('/etc/hostname').read())", FAST, guards=False)
    return not probe.ok and "No such file" in probe.error


def test_the_os_layer_alone_shows_the_program_only_its_folder() -> None:
    # chroot into the sandbox's own root: nothing of the machine is there to read or write
    if not _chroot_available():
        pytest.skip("no chroot here (not root and no user namespaces)")
    code = (
        "import os\n"
        "for path in ('/etc/passwd', '/root', '/tmp/dca-sandbox-escape'):\n"
        "    try:\n"
        "        print('OPENED', path, os.open(path, os.O_RDONLY | os.O_CREAT))\n"
        "    except OSError as exc:\n"
        "        print('no', exc.strerror)\n"
        "open('notes.txt', 'w').write('42')\n"
        "print(open('notes.txt').read(), os.getcwd())\n"
    )
    result = _run(code, FAST, guards=False)
    assert result.ok and "OPENED" not in result.stdout and result.last_line == "42 /work"
    assert not Path("/tmp/dca-sandbox-escape").exists()


ESCAPE_BY_FRAMES = """
import operator
try:
    1 / 0
except ZeroDivisionError as exc:
    frame = operator.attrgetter('_' * 2 + 'traceback' + '_' * 2)(exc).tb_frame
    while frame is not None:
        for value in frame.f_locals.values():
            if isinstance(value, list):
                value.clear()
        real = frame.f_builtins
        frame = frame.f_back
print(real['open']('/etc/passwd').read())
"""


def test_walking_up_the_frames_is_refused() -> None:
    # attrgetter reaches dunders the static check cannot see (a name built at run time); the frames it would lead to
    # (this sandbox's own state, the real builtins) stay out of reach
    assert check_program(ESCAPE_BY_FRAMES) == []
    result = run_program(ESCAPE_BY_FRAMES, FAST)
    assert result.kind == "forbidden" and "reading 'tb_frame'" in result.error and "root:" not in result.stdout
    result = run_program("import operator\nf = operator.methodcaller('_current_frames')", FAST)
    assert result.ok  # building the call is harmless; making it is refused:
    for code in (
        "import operator, typing\noperator.methodcaller('_current_frames')(operator.attrgetter('sys')(typing))",
        "def gen():\n    yield 1\nimport operator\nprint(operator.attrgetter('gi_frame')(gen()))",
    ):
        result = run_program(code, FAST)
        assert not result.ok and "frame" not in result.stdout, code


ESCAPE_BY_PATCHING = """
import operator
module = operator.attrgetter('_' * 2 + 'globals' + '_' * 2)(open)
real = module['builtins']
osm = module['os']
real.setattr(osm.path, 'realpath', lambda path: '/work/x')
real.setattr(osm.path, '_joinrealpath', lambda *args: ('/work/x', True))
module['_BLOCKED_EVENTS'] = ()
for path in ('/etc/passwd', '/tmp/dca-sandbox-escape'):
    try:
        print('OPENED', osm.open(path, osm.O_RDONLY | osm.O_CREAT))
    except OSError as exc:
        print('no', exc.strerror)
osm.kill(1, 0)
"""


def test_a_program_that_patches_the_python_guards_still_sees_only_its_folder() -> None:
    # The Python-level guards can be fooled by a program that reaches the sandbox module's
    # globals and patches what they call; the chroot, the user and the rlimits still hold.
    if not _chroot_available():
        pytest.skip("no chroot here (not root and no user namespaces)")
    result = run_program(ESCAPE_BY_PATCHING, FAST)
    assert "OPENED" not in result.stdout and "No such file" in result.stdout
    assert result.kind == "forbidden" and "os.kill" in result.error  # the hook's own list is bound, not patched
    assert not Path("/tmp/dca-sandbox-escape").exists()


SYMPY_OK = """
import sympy as sp
x = sp.symbols('x')
print(sp.solve(x**2 - 4, x), sp.simplify((x**2 - 1) / (x - 1)), sp.integrate(x * sp.exp(x), x))
print(sp.sympify('x**2 + 1').subs(x, 2), sp.Rational(1, 3) + sp.Rational(1, 6))
"""


def test_sympy_programs_run() -> None:
    pytest.importorskip("sympy")
    result = run_program(SYMPY_OK, SandboxConfig(timeout_s=30, cpu_s=20))
    assert result.ok, result.error
    assert result.stdout.splitlines() == ["[-2, 2] x + 1 (x - 1)*exp(x)", "5 1/2"]


# the real module behind a view: a function's globals, through a name built at run time
SYMPY_REAL_MODULE = (
    "import operator, sympy\n"
    "misc = operator.attrgetter('_' * 2 + 'globals' + '_' * 2)(sympy.utilities.misc.filldedent)\n"
)


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        # hostile strings built at run time (a literal dunder is refused by the static check)
        (
            "import sympy\nu = '_' * 2\nsympy.sympify(u + \"import\" + u + \"('os').system('touch /tmp/dca-sympy')\")",
            "compile",
        ),
        (
            "from sympy.parsing.sympy_parser import parse_expr\nu = '_' * 2\nparse_expr('().' + u + 'class' + u)",
            "compile",
        ),
        ("import sympy\nx = sympy.symbols('x')\nsympy.lambdify(x, x**2)(3)", "compile"),
        # the modules sympy's own modules hold are not in the views the program gets
        ("import sympy\nsympy.utilities.misc.os.system('touch /tmp/dca-sympy')", "has no attribute 'os'"),
        ("import sympy\nprint(sympy.utilities.misc.os.open('/etc/passwd', 0))", "has no attribute 'os'"),
        ("import sympy\nsympy.printing.gtk.subprocess.Popen(['id'])", "has no attribute 'subprocess'"),
        ("import sympy\nsympy.utilities.misc.sys.modules['ctypes'].CDLL(None)", "has no attribute 'sys'"),
        ("import sympy\nsympy.parsing.sympy_parser.builtins.open('/etc/passwd').read()", "has no attribute 'builtins'"),
        # and where a program reaches them anyway, the audit hook refuses what it does with them
        (SYMPY_REAL_MODULE + "misc['os'].system('touch /tmp/dca-sympy')", "os.system"),
        (SYMPY_REAL_MODULE + "print(misc['os'].open('/etc/passwd', 0))", "opening '/etc/passwd'"),
        (SYMPY_REAL_MODULE + "misc['sys'].modules['ctypes'].CDLL(None)", "ctypes"),
        (SYMPY_REAL_MODULE + "misc['sys'].modules['importlib'].import_module('socket')", "'socket'"),
    ],
)
def test_sympy_cannot_be_used_to_get_out(code: str, refused: str) -> None:
    pytest.importorskip("sympy")
    assert check_program(code) == []  # nothing the static check can see: the run-time layers stop it
    result = run_program(code, SandboxConfig(timeout_s=30, cpu_s=20))
    assert not result.ok and refused in result.error, result.error
    assert not Path("/tmp/dca-sympy").exists() and "root:" not in result.stdout


def test_isolation_reports_what_holds_here() -> None:
    from dca.reasoning.sandbox import isolation

    isolated, detail = isolation()
    assert "network namespace" in detail and ("no chroot" in detail) != _chroot_available()
    assert isolated == (_chroot_available() and "no network namespace" not in detail)
    if os.geteuid() == 0:  # root drops to an unused user id wherever it runs (these machines: all three hold)
        assert "a user id of its own" in detail
    assert "a size-capped folder" in detail or not isolated  # a tmpfs of its own where mounts are allowed


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_program_cannot_signal_processes_of_nobody() -> None:
    # Even with the Python guards off (os.kill allowed), the child runs under a user id no other
    # process has: a process of the common unprivileged user `nobody` is out of its reach.
    import signal
    import subprocess

    victim = subprocess.Popen(["sleep", "60"], user=65534, group=65534)
    try:
        code = f"import os, signal\nos.kill({victim.pid}, signal.SIGKILL)\nprint('sent')"
        result = _run(code, FAST, guards=False)
        assert not result.ok and "PermissionError" in result.error and "sent" not in result.stdout
        assert victim.poll() is None  # still running
        assert not run_program(code, FAST).ok  # and the guards refuse it before the kernel does
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()


FILL_THE_DISK = """
n = 0
try:
    for i in range(400):
        with open('f%d' % i, 'wb') as f:
            f.write(b'x' * 1_000_000)
        n += 1
finally:
    print(n)
"""


@pytest.mark.parametrize("guards", [True, False])
def test_a_program_cannot_fill_the_disk_with_many_files(guards: bool) -> None:
    # Each file is under the 1 MB per-file limit; 400 of them would be 400 MB. The work folder
    # is a tmpfs of its own, so the total stops at its size, with or without the Python guards.
    config = SandboxConfig(timeout_s=10, cpu_s=5, max_disk_bytes=4_000_000)
    result = _run(FILL_THE_DISK, config, guards=guards)
    assert result.kind == "forbidden" and "more than its folder holds (4000000 bytes)" in result.error
    assert int(result.last_line) <= 4  # whole files written before the cap


def test_many_empty_files_are_capped_too() -> None:
    config = SandboxConfig(max_files=20)
    result = run_program(
        "n = 0\ntry:\n    for i in range(5000):\n        open('e%d' % i, 'w').close()\n        n += 1\nfinally:\n    print(n)",
        config,
    )
    assert result.kind == "forbidden" and int(result.last_line) <= 20


@pytest.mark.parametrize(
    "code",
    [
        "print('{0.__globals__}'.format(open))",
        "print('{0.__globals__[_os]}'.format(open))",
        "print('{f._x}'.format(f=1))",
        "import operator\nprint(operator.attrgetter('__class__')(1))",
        "import string\nprint(string.Formatter().get_field('0.__globals__', (open,), {}))",
        "from random import _os",
        "from random import _os as o",
    ],
)
def test_dunder_reads_through_strings_and_private_imports_are_refused_before_running(code: str) -> None:
    result = run_program(code, FAST)
    assert result.kind == "rejected" and result.stdout == ""


@pytest.mark.parametrize(
    "code",
    [
        "from typing import sys\nprint(sys.modules)",
        "from statistics import sys\nprint(sys.modules)",
        "from calendar import sys\nprint(sys.modules)",
        "import typing\nprint(typing.sys.modules)",
        "import typing as t\nprint(t.types.FunctionType)",
        "import re\nprint(re.copyreg)",
        "import operator, random\nprint(operator.attrgetter('_' + 'os')(random).system)",
        "import fractions\nprint(fractions.sys.modules)",
    ],
)
def test_modules_that_allowed_modules_hold_are_out_of_reach(code: str) -> None:
    # typing holds sys, statistics holds sys and random, random holds os: the program sees a
    # view of each allowed module with only its public names and the allowed modules it holds
    assert check_program(code) == []
    result = run_program(code, FAST)
    assert not result.ok and "modules" not in result.stdout and "<module" not in result.stdout
    assert result.kind in ("forbidden", "error") and ("sandbox" in result.error or "AttributeError" in result.error)


def test_allowed_modules_still_work_through_their_views() -> None:
    code = (
        "from collections import Counter, abc\nimport datetime\nfrom datetime import time\nimport statistics\n"
        "from fractions import Fraction\nimport math as m\n"
        "if __name__ == '__main__':\n"
        "    print(Counter('aab')['a'], isinstance([], abc.Sequence), datetime.date(2020, 1, 2).day, time(1).hour,"
        " statistics.mean([1, 2, 3]), Fraction(1, 3) * 3, '{:.2f}'.format(m.pi))"
    )
    result = run_program(code, FAST)
    assert result.ok and result.last_line == "2 True 2 1 2 1 3.14", result
