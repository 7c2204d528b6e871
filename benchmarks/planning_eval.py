"""Model-only and full-system figures of a planner's model on evaluation files, as Markdown rows.

    python benchmarks/planning_eval.py sudoku ../shared/data/sudoku/top95.txt ../shared/data/sudoku/hardest.txt
    python benchmarks/planning_eval.py countdown ../shared/data/dream_planning/cd4_test.jsonl --limit 200
    python benchmarks/planning_eval.py sudoku FILE --random   # the same system with a random-weight model

Runs exactly what `dream-agent eval` runs (`dream_agent.evaluation.evaluate`). `--random`
swaps the trained model for a random-weight one of the same shape: what the toolkit's own
mechanisms (constraints, search, refinement) achieve without a model that knows anything,
so the trained model's share of the full-system figure can be read off.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from dream_agent import DiffusionEngine, DreamModel, load_model
from dream_agent.model import DreamDiffusionLM
from dream_agent.evaluation import evaluate
from planners import get_planner


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("planner")
    ap.add_argument("data", nargs="+")
    ap.add_argument("--model", default=None, help="default: the planner's bundled model")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-rounds", type=int, default=None, help="default: the planner's own")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1, help="1: per-problem latencies, as recorded in BENCHMARKS.md")
    ap.add_argument("--random", action="store_true", help="random weights of the same shape (an ablation)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    planner = get_planner(args.planner)
    lm = load_model(args.model or args.planner, device="cpu")
    if args.random:
        torch.manual_seed(0)
        lm = DreamDiffusionLM(DreamModel(lm.model.config).eval(), lm.tokenizer, name="random weights", sampling=lm.sampling)
    engine = DiffusionEngine(lm)
    print(f"{args.planner}, model {lm.name}, alg {engine.settings.alg}; {platform.machine()} CPU, {args.threads} threads, torch {torch.__version__}")
    print("| data | problems | model only | full system | mean NFE | median s | p95 s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for path in args.data:
        problems = [ex.problem for ex in planner.load_dataset(path)][: args.limit]
        m = evaluate(engine, planner, problems, max_rounds=args.max_rounds, batch_size=args.batch_size).metrics
        print(f"| {Path(path).name} | {m.problems} | {m.model_only_rate:.1%} | {m.solve_rate:.1%} | {m.mean_nfe:.0f} "
              f"| {m.median_seconds:.3f} | {m.p95_seconds:.3f} |", flush=True)


if __name__ == "__main__":
    main()
