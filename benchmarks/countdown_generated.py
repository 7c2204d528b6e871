"""Countdown figures on generated problems (never the test files): for choosing models and search settings.

    python benchmarks/countdown_generated.py models countdown runs/countdown     # model alone and full system
    python benchmarks/countdown_generated.py reuse --values none,0.9,0.8 --n 60  # search's reuse_above, interleaved

`models`: per model, the model alone on 200 generated problems of 3, 4 and 5 numbers, then the
full system on 100 five-number ones. `reuse`: the full system on N five-number problems, each
problem solved once per `reuse_above` value in turn, so that machine load hits every value alike.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics

import torch

from dream_agent import DiffusionEngine, load_model
from dream_agent import refine, search
from planners.countdown import CountdownPlanner


def summary(results) -> str:
    nfe, seconds = [r.nfe for r in results], [r.seconds for r in results]
    return (f"{sum(r.valid for r in results)}/{len(results)} solved, NFE median {statistics.median(nfe)} "
            f"mean {statistics.mean(nfe):.0f}, seconds median {statistics.median(seconds):.3f}")


def models(names: list[str]) -> None:
    for name in names:
        engine = DiffusionEngine(load_model(name, device="cpu"))
        for size in (3, 4, 5):
            planner = CountdownPlanner(sizes=(size,))
            alone = sum(refine.solve(engine, planner, ex.problem, max_rounds=1).model_only_valid
                        for ex in planner.examples(200, random.Random(9000 + size)))
            print(f"{name}: {size} numbers, model alone {alone}/200", flush=True)
        planner = CountdownPlanner(sizes=(5,))
        results = [refine.solve(engine, planner, ex.problem) for ex in planner.examples(100, random.Random(9100))]
        print(f"{name}: 5 numbers, full system {summary(results)}", flush=True)


def reuse(values: list[float | None], n: int, model: str) -> None:
    engine = DiffusionEngine(load_model(model, device="cpu"))
    planner = CountdownPlanner(sizes=(5,))
    results: dict[float | None, list] = {v: [] for v in values}
    plain = search.backtrack
    try:
        for ex in planner.examples(n, random.Random(777)):
            for v in values:
                refine.backtrack = functools.partial(plain, reuse_above=v)
                results[v].append(refine.solve(engine, planner, ex.problem))
    finally:
        refine.backtrack = plain
    for v, rs in results.items():
        print(f"reuse_above={v}: {summary(rs)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["models", "reuse"])
    ap.add_argument("models", nargs="*", default=["countdown"], help="models mode: model names or directories")
    ap.add_argument("--values", default="none,0.9", help="reuse mode: reuse_above values, 'none' for a pass a choice")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--model", default="countdown", help="reuse mode: the model")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "models":
        models(args.models)
    else:
        reuse([None if v == "none" else float(v) for v in args.values.split(",")], args.n, args.model)


if __name__ == "__main__":
    main()
