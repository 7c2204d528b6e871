"""Countdown figures on generated problems (never the test files): for choosing models and search settings.

    python benchmarks/countdown_generated.py models countdown runs/countdown        # model alone and full system
    python benchmarks/countdown_generated.py search --values none,0.9,0.8 --n 60    # reuse_above, interleaved
    python benchmarks/countdown_generated.py search --param depth_first --values 0,none --n 100
    python benchmarks/countdown_generated.py orders --values entropy,maskgit_plus --n 300 --full 100 --threads 2
    python benchmarks/countdown_generated.py sizes --values 2,3,4,5,6 --n 30    # the full system by size

`models`: per model, the model alone on 200 generated problems of 3, 4 and 5 numbers, then the
full system on 100 five-number ones. `search`: the full system on N five-number problems, each
problem solved once per value of one `dream_agent.search.backtrack` setting in turn, so that
machine load hits every value alike. `orders`: the engine's remasking order (`alg`, which a
model may ship in its generation_config.json): the model alone on N four-number problems, then,
interleaved, the full system on FULL five-number ones. `sizes`: the full system on N problems of
each size (seed 9200 + size): which sizes `CountdownPlanner.parse` should accept.

The problems come from `CountdownPlanner.examples`, drawn Dream's way since commit 8aa999b
(2026-11-23: a target, then inputs until they reach it); figures from before it came from a
forward-path generator whose problems are easier, and do not compare with later ones.
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


def model_alone(engine, size: int, n: int) -> int:
    """How many of n generated problems of `size` numbers (seed 9000 + size) the model alone fills right."""
    planner = CountdownPlanner(sizes=(size,))
    return sum(refine.solve(engine, planner, ex.problem, max_rounds=1).model_only_valid
               for ex in planner.examples(n, random.Random(9000 + size)))


def interleaved(variants: dict, n: int, seed: int) -> dict:
    """The full system on n generated five-number problems, each solved by every variant in turn, so
    that machine load hits them alike. A variant is a function (planner, problem) -> SolveResult."""
    planner = CountdownPlanner(sizes=(5,))
    results: dict = {key: [] for key in variants}
    for ex in planner.examples(n, random.Random(seed)):
        for key, solve in variants.items():
            results[key].append(solve(planner, ex.problem))
    return results


def models(names: list[str]) -> None:
    for name in names:
        engine = DiffusionEngine(load_model(name, device="cpu"))
        for size in (3, 4, 5):
            print(f"{name}: {size} numbers, model alone {model_alone(engine, size, 200)}/200", flush=True)
        planner = CountdownPlanner(sizes=(5,))
        results = [refine.solve(engine, planner, ex.problem) for ex in planner.examples(100, random.Random(9100))]
        print(f"{name}: 5 numbers, full system {summary(results)}", flush=True)


def _solve_with_search(engine, planner, problem, **setting):
    """`refine.solve` with one `search.backtrack` setting changed for this call."""
    plain = refine.backtrack
    refine.backtrack = functools.partial(search.backtrack, **setting)
    try:
        return refine.solve(engine, planner, problem)
    finally:
        refine.backtrack = plain


def compare(param: str, values: list, n: int, model: str, seed: int) -> None:
    engine = DiffusionEngine(load_model(model, device="cpu"))
    variants = {v: functools.partial(_solve_with_search, engine, **{param: v}) for v in values}
    for v, rs in interleaved(variants, n, seed).items():
        nfe = sorted(r.nfe for r in rs)
        print(f"{param}={v}: {summary(rs)}, NFE 90th percentile {nfe[int(0.9 * len(nfe))]}")


def orders(algs: list[str], n: int, full: int, model: str) -> None:
    lm = load_model(model, device="cpu")
    engines = {alg: DiffusionEngine(lm, alg=alg) for alg in algs}
    for alg, engine in engines.items():
        print(f"alg={alg}: 4 numbers, model alone {model_alone(engine, 4, n)}/{n}", flush=True)
    if full:
        variants = {alg: functools.partial(refine.solve, engine) for alg, engine in engines.items()}
        for alg, rs in interleaved(variants, full, 9100).items():
            print(f"alg={alg}: 5 numbers, full system {summary(rs)}")


def sizes(counts: list[int], n: int, model: str) -> None:
    engine = DiffusionEngine(load_model(model, device="cpu"))
    for size in counts:
        planner = CountdownPlanner(sizes=(size,))
        results = []
        for ex in planner.examples(n, random.Random(9200 + size)):
            results.append(refine.solve(engine, planner, ex.problem))
        print(f"{size} numbers: full system {summary(results)}, model alone "
              f"{sum(r.model_only_valid for r in results)}/{n}", flush=True)


SETTINGS = {"reuse_above": float, "depth_first": int}  # the search settings `search` mode compares


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["models", "search", "orders", "sizes"])
    ap.add_argument("models", nargs="*", default=["countdown"], help="models mode: model names or directories")
    ap.add_argument("--param", choices=sorted(SETTINGS), default="reuse_above", help="search mode: the setting")
    ap.add_argument("--values", default="none,0.9",
                    help="search mode: its values, 'none' for the search's None; orders mode: the algs; "
                         "sizes mode: the numbers of inputs")
    ap.add_argument("--full", type=int, default=0, help="orders mode: five-number problems for the full system")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--model", default="countdown", help="search and orders modes: the model")
    ap.add_argument("--seed", type=int, default=777, help="search mode: which generated problems")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "models":
        models(args.models)
    elif args.mode == "sizes":
        sizes([int(v) for v in args.values.split(",")], args.n, args.model)
    elif args.mode == "orders":
        orders(args.values.split(","), args.n, args.full, args.model)
    else:
        kind = SETTINGS[args.param]
        values = [None if v == "none" else kind(v) for v in args.values.split(",")]
        compare(args.param, values, args.n, args.model, args.seed)


if __name__ == "__main__":
    main()
