"""DreamModel's direct path (float32 inference on unpadded input) against its modules, on the CPU.

    python benchmarks/forward_path.py --threads 2            # one forward pass of each bundled model
    python benchmarks/forward_path.py --threads 2 --search 40  # and whole searches on generated cd5 problems

The direct path (`DreamModel._direct_logits`) calls the same weights through torch.nn.functional;
the modules' path is what training and padded batches use. Forward passes: batch 1, each bundled
model on a template of its planner (a five-number Countdown problem, a 9x9 Sudoku). Searches:
the full system on N generated five-number problems, each solved once per path in turn, so that
machine load hits both alike; the forward passes must come out the same, only the time differs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from dream_agent import DiffusionEngine, load_model, refine
from planners import get_planner
from planners.countdown import CountdownPlanner

PROBLEMS = {"countdown": "75,3,9,14,49,60", "sudoku": "4.....8.5.3..........7......2.....6.....8.4......1.......6.3.7.5..2.....1.4......"}


def per_pass_ms(model, ids: torch.Tensor, repeats: int = 7, n: int = 100) -> tuple[float, float]:
    """Median ms of a forward pass through the modules and through the direct path, timed in
    alternating blocks so that machine load hits both alike."""
    times: dict = {False: [], True: []}
    with torch.no_grad():
        for _ in range(repeats):
            for direct in times:
                model._direct_ok = direct
                model(ids)
                start = time.perf_counter()
                for _ in range(n):
                    model(ids)
                times[direct].append((time.perf_counter() - start) / n * 1e3)
    model._direct_ok = True
    return statistics.median(times[False]), statistics.median(times[True])


def forward_passes() -> None:
    print("| model | tokens | modules ms | direct ms |")
    print("|---|---:|---:|---:|")
    for name, text in PROBLEMS.items():
        lm, planner = load_model(name, device="cpu"), get_planner(name)
        template = planner.encode(planner.parse(text), lm.tokenizer)
        ids = template.input_ids[None, :]
        modules, direct = per_pass_ms(lm.model, ids)
        print(f"| {name} | {ids.shape[1]} | {modules:.2f} | {direct:.2f} |", flush=True)


def searches(n: int) -> None:
    lm = load_model("countdown", device="cpu")
    engine, planner = DiffusionEngine(lm), CountdownPlanner(sizes=(5,))
    results: dict = {False: [], True: []}
    try:
        for ex in planner.examples(n, random.Random(779)):
            for direct in results:
                lm.model._direct_ok = direct
                results[direct].append(refine.solve(engine, planner, ex.problem))
    finally:
        lm.model._direct_ok = True
    for direct, rs in results.items():
        nfe = sum(r.nfe for r in rs)
        print(f"{'direct' if direct else 'modules'}: {sum(r.valid for r in rs)}/{n} solved, {nfe} forward passes, "
              f"{sum(r.seconds for r in rs) / nfe * 1e3:.3f} ms a pass, median {statistics.median(r.seconds for r in rs):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--search", type=int, default=0, help="also solve this many generated five-number problems")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    forward_passes()
    if args.search:
        searches(args.search)


if __name__ == "__main__":
    main()
