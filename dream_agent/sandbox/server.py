"""The fork server that runs inside the sandbox: one clean child per candidate program.

Started by `dream_agent.sandbox.Sandbox` as `python -I server.py` (inside bubblewrap when
the kernel allows it). It imports only the standard library (and pyseccomp when present),
so it starts fast and carries nothing of the parent's state. Protocol on its stdin/stdout:
a 4-byte big-endian length, then a JSON object, each way.

    request  {"code": str, "tests": [[name, source], ...], "timeout": s, "limits": {...}, "seccomp": bool}
    response {"records": [...], "nonce_ok": bool, "output": str, "output_bytes": n,
              "returncode": n, "timed_out": bool, "output_over": bool}

Per request the server forks a child that, before any candidate code runs:
  - starts its own session (so the whole group can be killed) and takes resource limits
    (CPU seconds, address space, file size, open files, processes, no core files);
  - gets stdin from /dev/null, stdout/stderr on a capped pipe, a fresh working directory
    and an environment of three harmless variables;
  - loads a seccomp filter (when pyseccomp is there) that refuses socket(), signals to any
    other process, ptrace, and leaving its session.
Then it runs the program and each test in a fresh namespace, writing a record for each to a
report pipe that is not stdout. The verdict's last record is a nonce the server chose and
puts in a pipe the child reads only after every test has run: a candidate that exits early
(`os._exit(0)`, `sys.exit(0)`, an atexit hook) never gets there, and printing a success
line goes to stdout, which the verdict never reads. (A candidate that reads the harness's
own pipes or memory through ctypes or /proc could still forge one; the planner's rules can
forbid those names. See docs/CODE.md.)
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import select
import shutil
import signal
import struct
import sys
import time

try:  # the filter is optional: the host reports whether it is active
    import pyseccomp
except Exception:  # noqa: BLE001 (a broken libseccomp is as good as none)
    pyseccomp = None

# Under bubblewrap /tmp is a private tmpfs that vanishes with the sandbox; without it the folder is
# made unique per server in main(), so two servers (eval's workers) never share or wipe one.
RUNS = "/tmp/dream-sandbox"
OUTPUT_KEEP = 16 * 1024  # bytes of stdout/stderr kept for the report
MiB = 1024 * 1024


# ---- the child: limits, filter, then the candidate ------------------------------------------


def _limit(which: int, value: int) -> None:
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))


def _seccomp_filter() -> None:
    """Refuse what a test never needs and what would reach past the sandbox."""
    me = os.getpid()
    f = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    deny = pyseccomp.ERRNO(1)  # EPERM
    f.add_rule(deny, "socket")  # no new sockets of any family (socketpair is another call)
    f.add_rule(deny, "kill", pyseccomp.Arg(0, pyseccomp.NE, me))  # signals only to itself
    f.add_rule(deny, "tgkill", pyseccomp.Arg(0, pyseccomp.NE, me))
    for name in ("tkill", "pidfd_send_signal", "pidfd_open", "ptrace", "process_vm_writev",
                 "process_vm_readv", "setsid", "setpgid", "unshare", "setns", "mount", "umount2",
                 "pivot_root", "chroot", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
                 "userfaultfd", "io_uring_setup"):
        try:
            f.add_rule(deny, name)
        except Exception:  # noqa: BLE001 (a syscall this kernel/arch does not know)
            pass
    f.load()


def _child(req: dict, workdir: str, out_w: int, report_w: int, nonce_r: int) -> None:
    os.setsid()
    lim = req["limits"]
    _limit(resource.RLIMIT_CPU, int(lim["cpu_seconds"]))
    _limit(resource.RLIMIT_AS, int(lim["memory_mb"]) * MiB)
    _limit(resource.RLIMIT_FSIZE, int(lim["file_mb"]) * MiB)
    _limit(resource.RLIMIT_NOFILE, int(lim["open_files"]))
    _limit(resource.RLIMIT_NPROC, int(lim["processes"]))
    _limit(resource.RLIMIT_CORE, 0)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write raises OSError instead of killing
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    keep = {0, 1, 2, report_w, nonce_r}
    for fd in range(3, max(keep) + 64):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"})
    if req.get("seccomp") and pyseccomp is not None:
        _seccomp_filter()
    _harness(req["code"], req["tests"], report_w, nonce_r)


def _harness(code: str, tests: list, report_w: int, nonce_r: int) -> None:
    """Run the program, then each test; a record per step; the nonce last, read only now."""
    # Everything the harness calls is bound here, before candidate code can patch a module.
    # Builtins too: a candidate may replace `builtins.int` or `enumerate`, so the records below
    # call no builtin by name once candidate code has run.
    write, read, exit_now, compile_, exec_ = os.write, os.read, os._exit, compile, exec
    format_exc, enumerate_, any_error = _failure, enumerate, BaseException

    def record(kind: str, index: int, ok: bool, message: str = "") -> None:
        text = "%s\t%d\t%s\t%s\n" % (kind, index, "1" if ok else "0", message.encode("utf-8", "replace").hex())
        write(report_w, text.encode())

    import builtins

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    record("S", -1, True)
    try:
        exec_(compile_(code, "<candidate>", "exec"), namespace)
        record("T", -1, True)
    except any_error as e:  # SystemExit and KeyboardInterrupt are failures too
        record("T", -1, False, format_exc(e, code, "<candidate>"))
    for i, (name, source) in enumerate_(tests):
        record("S", i, True)
        try:
            exec_(compile_(source, f"<test {i}>", "exec"), namespace)
            record("T", i, True)
        except any_error as e:
            record("T", i, False, format_exc(e, source, f"<test {i}>"))
    nonce = read(nonce_r, 64)
    write(report_w, b"N\t" + nonce + b"\n")
    exit_now(0)  # no atexit hooks, no finalizers: nothing of the candidate's runs after the verdict


def _failure(e: BaseException, source: str, filename: str) -> str:
    """`ExcType: message`, with the failing line of `filename` when the traceback reaches it."""
    line = ""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            lines = source.splitlines()
            if 0 < tb.tb_lineno <= len(lines):
                line = lines[tb.tb_lineno - 1].strip()
        tb = tb.tb_next
    if isinstance(e, SyntaxError) and e.filename == filename and e.lineno:
        lines = source.splitlines()
        line = lines[e.lineno - 1].strip() if 0 < e.lineno <= len(lines) else ""
    what = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return f"{what} (at: {line})" if line else what


# ---- the server: fork, watch, collect, clean up ----------------------------------------------


def _kill_descendants() -> None:
    """SIGKILL every process left below the server (the server is their subreaper), then reap."""
    for _ in range(200):
        kids = set()
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/children") as f:
                    kids.update(int(p) for p in f.read().split())
            except OSError:
                pass
        if not kids:
            return
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.001)
                break


def _set_subreaper() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:  # noqa: BLE001 (then only the process group is killed)
        pass


def run_one(req: dict, seq: int) -> dict:
    workdir = os.path.join(RUNS, f"run-{seq}")
    os.makedirs(workdir, mode=0o700)
    out_r, out_w = os.pipe()
    report_r, report_w = os.pipe()
    nonce_r, nonce_w = os.pipe()
    nonce = secrets.token_hex(16)
    os.write(nonce_w, nonce.encode())
    os.close(nonce_w)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(report_r)
            _child(req, workdir, out_w, report_w, nonce_r)
        finally:
            os._exit(70)
    for fd in (out_w, report_w, nonce_r):
        os.close(fd)

    deadline = time.monotonic() + float(req["timeout"])
    output, output_bytes, report = bytearray(), 0, bytearray()
    output_cap = int(req["limits"]["output_mb"]) * MiB
    timed_out = output_over = False
    open_fds = {out_r, report_r}
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(list(open_fds), [], [], left)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.discard(fd)
            elif fd == out_r:
                output_bytes += len(chunk)
                if len(output) < OUTPUT_KEEP:
                    output += chunk[: OUTPUT_KEEP - len(output)]
                if output_bytes > output_cap:
                    output_over = True
                    open_fds.clear()
            elif len(report) < 4 * MiB:  # a report is a few hundred bytes; more is a flood
                report += chunk
    try:
        os.killpg(pid, signal.SIGKILL)  # the child's session: it and whatever it started
    except (ProcessLookupError, PermissionError):
        pass
    returncode = None
    try:
        _, status = os.waitpid(pid, 0)
        returncode = os.waitstatus_to_exitcode(status)
    except ChildProcessError:
        pass
    _kill_descendants()
    for fd in (out_r, report_r):
        os.close(fd)
    shutil.rmtree(workdir, ignore_errors=True)
    _wipe_tmp()

    records, nonce_ok = [], False
    lines = report.decode("utf-8", "replace").split("\n")
    for n, line in enumerate(lines):
        parts = line.split("\t")
        if parts[0] == "N" and len(parts) == 2:
            # the nonce must be the report's last record: anything written after it is not the harness's
            nonce_ok = secrets.compare_digest(parts[1], nonce) and all(not rest for rest in lines[n + 1:])
            break
        if len(parts) == 4 and parts[0] in ("S", "T"):
            try:
                message = bytes.fromhex(parts[3]).decode("utf-8", "replace")
                records.append([parts[0], int(parts[1]), parts[2] == "1", message])
            except ValueError:
                records.append(["?", 0, False, "unreadable record"])
        elif line:
            records.append(["?", 0, False, "unreadable record"])
    return {"records": records, "nonce_ok": nonce_ok, "output": output.decode("utf-8", "replace"),
            "output_bytes": output_bytes, "returncode": returncode, "timed_out": timed_out,
            "output_over": output_over}


def _wipe_tmp() -> None:
    """Under bubblewrap /tmp is the sandbox's own: whatever a candidate left anywhere in it goes."""
    if os.environ.get("DREAM_SANDBOX_PRIVATE_TMP") != "1":
        return
    for name in os.listdir("/tmp"):
        if name == os.path.basename(RUNS):
            continue
        path = os.path.join("/tmp", name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main() -> None:
    # The server must outlive what its children try: they get no signal rights over it (seccomp),
    # and it ignores the terminal signals a stray group kill could send.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    _set_subreaper()
    global RUNS
    if os.environ.get("DREAM_SANDBOX_PRIVATE_TMP") == "1":
        shutil.rmtree(RUNS, ignore_errors=True)
        os.makedirs(RUNS, mode=0o700, exist_ok=True)
    else:
        import tempfile

        RUNS = tempfile.mkdtemp(prefix="dream-sandbox-")
    inp, out = sys.stdin.fileno(), sys.stdout.fileno()
    hello = {"ready": True, "seccomp": pyseccomp is not None, "pid": os.getpid()}
    _write_all(out, json.dumps(hello).encode())
    seq = 0
    while True:
        head = _read_exact(inp, 4)
        if head is None:
            return
        body = _read_exact(inp, struct.unpack(">I", head)[0])
        if body is None:
            return
        seq += 1
        try:
            reply = run_one(json.loads(body), seq)
        except Exception as e:  # noqa: BLE001 (a server error is reported, the server lives on)
            reply = {"error": f"{type(e).__name__}: {e}"}
        _write_all(out, json.dumps(reply).encode())


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(RUNS, ignore_errors=True)  # the host closed the pipe: nothing of ours is left behind
