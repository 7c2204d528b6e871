"""Load test of `dream-agent serve` on loopback: concurrent clients solving Countdown and Sudoku, then a
mixed run in which a share of the requests are malformed.

    python benchmarks/serve_load.py --levels 1,4,16,64 --requests 128 --mixed 2000

Starts the server itself (`dream-agent serve --port P --max-batch B`, the planners' bundled models,
CPU) unless --url names a running one. For each concurrency level: requests a second, p50 and p99
latency and the solve rate, over --requests solves (half Countdown, half Sudoku), bounded by
--seconds. The mixed run sends --mixed requests at --mixed-concurrency, --bad of them malformed
(bad JSON, a missing or mistyped field, an unknown planner, an unparsable problem, a body over the
size cap); it checks every malformed one is answered 4xx, every good one 200 with the answer the
level-1 run got for that problem, none 5xx, and compares the server's resident memory (its
/metrics process_resident_memory_bytes) after the first and the last thousand requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dream_planning"


def problems(limit: int) -> list[tuple[str, str]]:
    """(planner, problem text) pairs, Countdown and Sudoku alternating."""
    from planners import get_planner

    out = {}
    for name, file in (("countdown", "cd4_test.jsonl"), ("sudoku", "sudoku_4x4_8.jsonl")):
        planner = get_planner(name)
        out[name] = [planner.problem_text(ex.problem) for ex in planner.load_dataset(str(DATA / file))][: limit // 2]
    return [p for pair in zip(out["countdown"], out["sudoku"]) for p in (("countdown", pair[0]), ("sudoku", pair[1]))]


def start_server(max_batch: int, pad: bool) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "from dream_agent.cli.main import run; run()", "serve", "--device", "cpu",
                             "--port", str(port), "--max-batch", str(max_batch), "--max-queue", "1024"] + (["--pad"] if pad else []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def rss(url: str) -> float:
    return metric(url, "process_resident_memory_bytes")


async def level(url: str, work: list[tuple[str, str]], concurrency: int, seconds: float) -> dict:
    latencies, answers, queue = [], {}, list(enumerate(work))
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker():
            while queue and time.perf_counter() - start < seconds:
                i, (planner, text) = queue.pop(0)
                t = time.perf_counter()
                r = await client.post(f"{url}/v1/solve/{planner}", json={"problem": text})
                latencies.append(time.perf_counter() - t)
                answers[i] = r.json() if r.status_code == 200 else {"valid": False, "status": r.status_code}

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {"concurrency": concurrency, "requests": len(latencies), "rps": len(latencies) / wall, "p50": q[49],
            "p99": q[98], "solve_rate": sum(a.get("valid", False) for a in answers.values()) / max(len(answers), 1),
            "answers": answers}


BAD = [  # (path, raw body) a client may send by mistake
    ("/v1/solve/countdown", b"{not json"),
    ("/v1/solve/countdown", b"{}"),
    ("/v1/solve/countdown", json.dumps({"problem": 42}).encode()),
    ("/v1/solve/countdown", json.dumps({"problem": "not numbers at all"}).encode()),
    ("/v1/solve/countdown", json.dumps({"problem": "1,2,3", "max_rounds": -1}).encode()),
    ("/v1/solve/nosuch", json.dumps({"problem": "1,2,3"}).encode()),
    ("/v1/solve/sudoku", json.dumps({"problem": "12x4"}).encode()),
    ("/v1/solve/sudoku", json.dumps({"problem": "x" * (2 << 20)}).encode()),
]


async def mixed(url: str, work: list[tuple[str, str]], expected: dict[int, dict], total: int, bad_share: float,
                concurrency: int) -> dict:
    rng = random.Random(0)
    plan = [("bad", rng.randrange(len(BAD))) if rng.random() < bad_share else ("good", rng.randrange(len(work)))
            for _ in range(total)]
    counts = {"bad_4xx": 0, "bad_other": 0, "good_ok": 0, "good_wrong": 0, "5xx": 0}
    memory, done, cursor = [], 0, 0
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker():
            nonlocal done, cursor
            while cursor < len(plan):
                kind, k = plan[cursor]
                cursor += 1
                if kind == "bad":
                    path, raw = BAD[k]
                    r = await client.post(f"{url}{path}", content=raw, headers={"content-type": "application/json"})
                    counts["bad_4xx" if 400 <= r.status_code < 500 else "bad_other"] += 1
                else:
                    planner, text = work[k]
                    r = await client.post(f"{url}/v1/solve/{planner}", json={"problem": text})
                    want = expected[k]
                    ok = r.status_code == 200 and r.json()["solution"] == want["solution"] and r.json()["valid"] == want["valid"]
                    counts["good_ok" if ok else "good_wrong"] += 1
                counts["5xx"] += r.status_code >= 500
                done += 1
                if done % 1000 == 0:
                    memory.append(await asyncio.to_thread(rss, url))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    counts["rss_mb"] = [round(m / 2**20, 1) for m in memory]
    if len(memory) >= 2:
        counts["rss_change"] = memory[-1] / memory[0] - 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="a running server (else one is started)")
    ap.add_argument("--levels", default="1,4,16,64")
    ap.add_argument("--requests", type=int, default=128, help="solves at each level")
    ap.add_argument("--seconds", type=float, default=300, help="time bound of each level")
    ap.add_argument("--max-batch", type=int, default=64)
    ap.add_argument("--pad", action="store_true", help="start the server with --pad (rows of any length share a pass)")
    ap.add_argument("--mixed", type=int, default=2000, help="requests in the mixed run (0: none)")
    ap.add_argument("--bad", type=float, default=0.25, help="share of malformed requests in the mixed run")
    ap.add_argument("--mixed-concurrency", type=int, default=16)
    args = ap.parse_args()

    proc, url = (None, args.url) if args.url else start_server(args.max_batch, args.pad)
    try:
        work = problems(args.requests)
        for planner in ("countdown", "sudoku"):  # loads each planner's model before the clock starts
            httpx.post(f"{url}/v1/solve/{planner}", json={"problem": next(t for p, t in work if p == planner)}, timeout=300)
        print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {len(work)} problems "
              f"(cd4_test, sudoku_4x4_8); --max-batch {args.max_batch}")
        print("| clients | requests | req/s | p50 s | p99 s | solved | rows a pass |\n|---|---|---|---|---|---|---|")
        base = None
        for c in [int(v) for v in args.levels.split(",")]:
            rows, passes = metric(url, "dream_agent_batch_rows_sum"), metric(url, "dream_agent_forward_passes_total")
            r = asyncio.run(level(url, work, c, args.seconds))
            base = base or r
            rows = (metric(url, "dream_agent_batch_rows_sum") - rows) / (metric(url, "dream_agent_forward_passes_total") - passes)
            print(f"| {c} | {r['requests']} | {r['rps']:.2f} ({r['rps'] / base['rps']:.1f}x) | {r['p50']:.3f} | "
                  f"{r['p99']:.3f} | {r['solve_rate']:.1%} | {rows:.1f} |", flush=True)
        if args.mixed:
            m = asyncio.run(mixed(url, work, base["answers"], args.mixed, args.bad, args.mixed_concurrency))
            print(f"mixed run, {args.mixed} requests at {args.mixed_concurrency} clients, {args.bad:.0%} malformed: {m}")
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


if __name__ == "__main__":
    main()
