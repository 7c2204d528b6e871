"""Oracle-solved training problems, made once and kept in a JSONL file.

    python -m planners.tasks.dataset blocks runs/tasks/blocks-data.jsonl --n 3000
    records = read_records(path); task, plan = record_task(domain, records[0])

Fast Downward takes ~0.3 s a problem, far slower than training consumes examples, so the
problems are solved once; training draws from them with two exact augmentations:
any suffix of a shortest plan is a shortest plan from the state it starts in, and the
objects may be re-declared in any order (the canonical names follow).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from dream_agent.errors import ProblemError

from .domain import Domain, Task
from .oracle import optimal_plan


def to_record(task: Task, plan) -> dict:
    return {"objects": [list(o) for o in task.objects], "init": sorted(list(f) for f in task.init),
            "goal": [[p, list(f)] for p, f in task.goal], "plan": [list(s) for s in plan]}


def record_task(domain: Domain, rec: dict) -> tuple[Task, list[tuple]]:
    objects = [tuple(o) for o in rec["objects"]]
    task = Task(domain, objects, frozenset(tuple(f) for f in rec["init"]),
                tuple((bool(p), tuple(f)) for p, f in rec["goal"]), {o: o for o, _ in objects})
    return task, [tuple(s) for s in rec["plan"]]


def read_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def solve_into(path: str | Path, make_task, n: int, *, seed: int = 0, max_len: int | None = None,
               timeout: float = 20.0, log=None) -> int:
    """Append oracle-solved problems to `path` until it holds `n` (resumable: counts what is there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    have = len(read_records(path)) if path.exists() else 0
    rng = random.Random(f"tasks-data/{seed}/{have}")
    start, tried = time.time(), 0
    with open(path, "a", encoding="utf-8") as f:
        while have < n:
            if tried >= 50 * n + 100:  # the generator rarely yields a plan within the limits: stop
                if have == 0:
                    raise ProblemError(f"none of {tried} generated problems has an oracle plan of at most "
                                       f"{max_len} steps within {timeout} s; raise --max-steps")
                break
            task = make_task(rng)
            tried += 1
            plan = optimal_plan(task, timeout=timeout)
            if plan is None or not plan or (max_len is not None and len(plan) > max_len):
                continue
            f.write(json.dumps(to_record(task, plan)) + "\n")
            f.flush()
            have += 1
            if log and have % 50 == 0:
                log(f"{have}/{n} solved ({tried} tried, {time.time() - start:.0f} s)")
    return have


def main(argv=None) -> None:
    from .generators import blocksworld, gripper

    ap = argparse.ArgumentParser(description="oracle-solved training problems for the bundled domains")
    ap.add_argument("kind", choices=["blocks", "gripper"])
    ap.add_argument("out")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--min", type=int, default=3)
    ap.add_argument("--max", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    domain = Domain.from_file(a.domain)
    make = {"blocks": blocksworld, "gripper": gripper}[a.kind]
    solve_into(a.out, lambda rng: make(domain, rng, rng.randint(a.min, a.max)), a.n, seed=a.seed,
               max_len=a.max_len, log=lambda m: print(m, file=sys.stderr, flush=True))


if __name__ == "__main__":
    main()
