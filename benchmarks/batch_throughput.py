"""Problems a second of `dream-agent eval` at several batch sizes, with the solve rates beside them.

    python benchmarks/batch_throughput.py countdown ../shared/data/dream_planning/cd4_test.jsonl --limit 200
    python benchmarks/batch_throughput.py sudoku ../shared/data/sudoku/top95.txt --sizes 1,8,32 --threads 1,2

Runs exactly what `dream-agent eval --batch-size B` runs (`dream_agent.evaluation.evaluate`, which
calls `refine.solve_many`). Every batch size must give the same solved and model-only counts and
the same forward passes (a problem's result does not depend on its batch-mates); the script checks
it and says so. Throughput is problems over the whole run's wall time; latency is per problem.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from dream_agent import DiffusionEngine, load_model
from dream_agent.evaluation import evaluate
from planners import get_planner


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("planner")
    ap.add_argument("data")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--sizes", type=ints, default=[1, 8, 32])
    ap.add_argument("--threads", type=ints, default=[1], help="torch CPU threads, each size run at each")
    args = ap.parse_args()

    planner = get_planner(args.planner)
    problems = [ex.problem for ex in planner.load_dataset(args.data)][: args.limit]
    engine = DiffusionEngine(load_model(args.planner, device="cpu"))
    print(f"{args.planner} on {Path(args.data).name}, {len(problems)} problems, bundled model, alg {engine.settings.alg}; "
          f"{platform.machine()} CPU ({torch.get_num_threads()} threads available), torch {torch.__version__}")
    print("| threads | batch size | problems/s | speed-up | solved | model only | mean NFE | median latency s | p95 latency s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    base, outcomes = None, set()
    for threads in args.threads:
        torch.set_num_threads(threads)
        for size in args.sizes:
            m = evaluate(engine, planner, problems, batch_size=size).metrics
            base = base or m.problems_per_second
            outcomes.add((m.solved, m.model_only, m.mean_nfe))
            print(f"| {threads} | {size} | {m.problems_per_second:.2f} | {m.problems_per_second / base:.2f}x "
                  f"| {m.solved}/{m.problems} | {m.model_only} | {m.mean_nfe:.1f} | {m.median_seconds:.3f} "
                  f"| {m.p95_seconds:.3f} |", flush=True)
    print("same solved, model-only and forward-pass figures at every size" if len(outcomes) == 1
          else f"FIGURES DIFFER across sizes: {sorted(outcomes)}")


if __name__ == "__main__":
    main()
