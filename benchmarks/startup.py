"""Whole-process wall time of the CLI's main paths against `python -c "import torch"`, and the solve's
own time with one thread or torch's default, on a quiet machine or one kept busy.

    python benchmarks/startup.py                      # start-up table, 5 runs each, interleaved
    python benchmarks/startup.py --busy 2             # the same with two spinning processes alongside
    python benchmarks/startup.py --threads-only --busy 2   # solve seconds: --threads 1 against torch's default
    python benchmarks/startup.py --importtime         # what a solve's imports cost, by top-level package

Each command runs `--runs` times, the commands interleaved so that load from other processes falls
on all of them alike; the table gives medians. `--busy N` starts N processes spinning in pure
Python (one a core) for the measurement and stops them afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PUZZLE_9 = "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"  # README's example
CLI = shutil.which("dream-agent") or str(Path(sys.executable).with_name("dream-agent"))

STARTUP = {
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "python -c 'import <transformers Qwen2 modeling>'": [sys.executable, "-c", "import transformers.models.qwen2.modeling_qwen2"],
    "dream-agent planners": [CLI, "planners"],
    "dream-agent solve sudoku <bad input>": [CLI, "solve", "sudoku", "1.34 34.2 2.4. 4.2a"],
    "dream-agent solve sudoku <README's 9x9>": [CLI, "solve", "sudoku", PUZZLE_9],
}


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t, done.stdout


def spinners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def startup(runs: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in STARTUP}
    for _ in range(runs):
        for name, cmd in STARTUP.items():
            times[name].append(timed(cmd)[0])
    torch_s = statistics.median(times['python -c "import torch"'])
    print(f"{'command':50s} {'median s':>9s} {'min s':>7s} {'x import torch':>15s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:50s} {med:9.2f} {min(ts):7.2f} {med / torch_s:15.2f}")


def threads(runs: int) -> None:
    """The solve's own seconds (its --json stats: the model loaded, the search alone) and wall time."""
    variants = {"--threads 1": ["--threads", "1"], f"--threads {os.cpu_count()} (torch's default here)":
                ["--threads", str(os.cpu_count())]}
    out: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, extra in variants.items():
            wall, stdout = timed([CLI, "solve", "sudoku", PUZZLE_9, "--json", *extra])
            out[name].append((json.loads(stdout.strip().splitlines()[-1])["stats"]["seconds"], wall))
    print(f"{'solve sudoku <README 9x9>':42s} {'solve s (median)':>17s} {'wall s (median)':>16s}")
    for name, rows in out.items():
        print(f"{name:42s} {statistics.median(r[0] for r in rows):17.3f} {statistics.median(r[1] for r in rows):16.2f}")


WATCHED = ["torch", "transformers", "transformers.models.qwen2.modeling_qwen2", "transformers.modeling_utils",
           "transformers.masking_utils", "torch._dynamo", "transformers.distributed.sharding_utils",
           "transformers.loss.loss_utils", "scipy", "accelerate", "dream_agent.model", "planners.sudoku"]


def importtime() -> None:
    """`python -X importtime` over what `dream-agent solve` imports: the cumulative time of the
    modules that cost most, where they are first imported (so torch counts what `import torch` loads)."""
    code = "import planners.sudoku, dream_agent.cli.main, dream_agent.cli.solve, dream_agent.refine, dream_agent.model"
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True).stderr
    cumulative: dict[str, int] = {}
    total = 0
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            cumulative.setdefault(name, int(parts[1]))
            total += int(parts[0].split(":")[-1])
    print(f"{'module (first import)':45s} {'cumulative s':>12s} {'share':>6s}   (python -X importtime; all imports {total / 1e6:.2f} s)")
    for name in WATCHED:
        if name in cumulative:
            print(f"{name:45s} {cumulative[name] / 1e6:12.2f} {cumulative[name] / total:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, help="spinning processes alongside the measurement")
    parser.add_argument("--threads-only", action="store_true", help="only the thread comparison")
    parser.add_argument("--importtime", action="store_true", help="only the import-time breakdown")
    args = parser.parse_args()
    if args.importtime:
        return importtime()
    busy = spinners(args.busy)
    try:
        time.sleep(0.5 if busy else 0)
        print(f"# {os.cpu_count()} cores, {args.busy} spinning processes, load average {os.getloadavg()[0]:.1f} at start")
        if not args.threads_only:
            startup(args.runs)
        threads(args.runs)
    finally:
        for p in busy:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
