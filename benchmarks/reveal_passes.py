"""Forward passes against model-only solve rate: one position a step, `threshold`, `entropy_bound`.

    python benchmarks/reveal_passes.py --n 400 --threads 1   # about 34 min on 2 shared cores
    python benchmarks/reveal_passes.py --n 400 --thresholds 0.9,0.99 --bounds 0.01,0.1 --tasks countdown
    python benchmarks/reveal_passes.py --remask 60 --thresholds 0.99 --bounds 0.01   # re-masking rounds too

The model-only round of `dream_agent.refine.solve` (the bundled model alone, argmax, no hooks,
steps = one per masked position as a cap) on generated problems, never the evaluation files:
9x9 Sudoku for the bundled sudoku model, Countdown with 3, 4 and 5 numbers (evenly mixed) for
the bundled countdown model, each model in its own order (entropy; maskgit_plus, which the
countdown model ships). The problems come from the planners' `examples` with seeds of their own
("reveal-passes/<task>"; training streams use "dream-agent/<seed>/<chunk>").

For speed, problems with the same number of masks are filled as one batch (the per-row reveal
counts make a row's fill its own); a row's forward passes are the passes until it had nothing
masked. The first `--check` problems are also solved one at a time through `refine.solve` with
max_rounds=1 and must give the same verdicts and passes (the script stops otherwise).

`--remask N`: the full system with re-masking rounds (search off, constraint hooks on, 10 rounds)
on N problems of each task, with each rule applied to every round: what the rules do after the
model-only round. Prints Markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict

import torch

from dream_agent import DiffusionEngine, load_model, refine
from planners.countdown import CountdownPlanner
from planners.sudoku import SudokuPlanner

TASKS = {
    "sudoku": lambda: SudokuPlanner(sizes=(9,)),  # the bundled model's README: trained on 4x4, 6x6 and 9x9
    "countdown": lambda: CountdownPlanner(sizes=(3, 4, 5)),  # its README: Dream's cd3/cd4/cd5
}


def variants(thresholds: list[float], bounds: list[float]) -> dict[str, dict]:
    # Dream's schedule with steps = masks (today's model-only round): its first pass reveals nothing
    # (floor(n (1 - s/t)) < 1) and its last reveals two; a bound of ~0 reveals exactly one a pass.
    out = {"one position a step": {}, "strictly one a step (entropy_bound 1e-9)": {"entropy_bound": 1e-9}}
    out.update({f"threshold {t}": {"threshold": t} for t in thresholds})
    out.update({f"entropy_bound {g}": {"entropy_bound": g} for g in bounds})
    return out


def model_only(engine, planner, examples, batch: int) -> list[tuple[bool, int]]:
    """(valid, forward passes) of each problem's model-only fill, in order."""
    tok = engine.tokenizer
    templates = [planner.encode(ex.problem, tok) for ex in examples]
    groups: dict[int, list[int]] = defaultdict(list)  # masks -> problem indices
    for i, t in enumerate(templates):
        groups[int(t.masked.sum())].append(i)
    out: list[tuple[bool, int] | None] = [None] * len(examples)
    mask_id = engine.model.mask_token_id
    for masks, members in groups.items():
        for start in range(0, len(members), batch):
            rows = members[start:start + batch]
            result = engine.fill([templates[i] for i in rows], steps=masks, return_history=True)
            done = torch.stack([(h == mask_id).sum(1) == 0 for h in result.history])  # (steps, B) nothing masked
            for b, i in enumerate(rows):
                passes = int(done[:, b].nonzero()[0]) + 1  # the pass that revealed the row's last mask
                solution = planner.decode(examples[i].problem, templates[i], result.row_ids(b))
                out[i] = (not planner.check(examples[i].problem, solution), passes)
    return out


def check_against_solve(engine, planner, examples, got) -> None:
    for ex, (valid, passes) in zip(examples, got):
        r = refine.solve(engine, planner, ex.problem, max_rounds=1)
        if (r.model_only_valid, r.nfe) != (valid, passes):
            raise SystemExit(f"batched fill disagrees with refine.solve: {(valid, passes)} vs "
                             f"{(r.model_only_valid, r.nfe)} for {ex.problem}")


def table(task: str, examples, results: dict[str, list[tuple[bool, int]]], seconds: dict[str, float]) -> str:
    base = results["one position a step"]
    base_passes = statistics.mean(p for _, p in base)
    base_rate = 100 * statistics.mean(v for v, _ in base)
    sizes = sorted({len(ex.problem.numbers) for ex in examples}) if task == "countdown" else []
    head = "| reveal | mean passes | fewer passes | model-only solved | vs one a step |"
    rule = "|---|---:|---:|---:|---:|"
    if sizes:
        head += " " + " | ".join(f"{s} numbers" for s in sizes) + " |"
        rule += "---:|" * len(sizes)
    lines = [head + " seconds |", rule + "---:|"]
    for name, rows in results.items():
        passes = statistics.mean(p for _, p in rows)
        rate = 100 * statistics.mean(v for v, _ in rows)
        line = (f"| {name} | {passes:.1f} | {base_passes / passes:.2f}x | {rate:.1f}% "
                f"({sum(v for v, _ in rows)}/{len(rows)}) | {rate - base_rate:+.1f} |")
        for s in sizes:
            of = [v for ex, (v, _) in zip(examples, rows) if len(ex.problem.numbers) == s]
            line += f" {100 * statistics.mean(of):.1f}% |"
        lines.append(line + f" {seconds[name]:.1f} |")
    return "\n".join(lines)


def remask_table(engines: dict[str, DiffusionEngine], planner, examples) -> str:
    lines = ["| reveal (every round) | solved | model only | mean passes | mean rounds |", "|---|---:|---:|---:|---:|"]
    for name, engine in engines.items():
        if name.startswith("strictly"):
            continue  # the model-only table's second baseline; here today's rounds are the baseline
        rs = [refine.solve(engine, planner, ex.problem, search=False, max_rounds=10) for ex in examples]
        lines.append(f"| {name} | {sum(r.valid for r in rs)}/{len(rs)} | {sum(r.model_only_valid for r in rs)}/{len(rs)} "
                     f"| {statistics.mean(r.nfe for r in rs):.1f} | {statistics.mean(r.rounds for r in rs):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="generated problems a task")
    ap.add_argument("--tasks", default="sudoku,countdown")
    ap.add_argument("--thresholds", default="0.9,0.95,0.99,0.995,0.999")
    ap.add_argument("--bounds", default="0.001,0.003,0.01,0.03,0.1,0.3", help="entropy bounds, in nats")
    ap.add_argument("--batch", type=int, default=64, help="rows a forward pass (problems with equal mask counts)")
    ap.add_argument("--check", type=int, default=16, help="problems also solved one at a time, to cross-check")
    ap.add_argument("--remask", type=int, default=0, help="problems a task for the re-masking-rounds table (0: none)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = variants([float(v) for v in args.thresholds.split(",") if v], [float(v) for v in args.bounds.split(",") if v])
    for task in args.tasks.split(","):
        planner = TASKS[task]()
        lm = load_model(task, device="cpu", threads=args.threads)
        engines = {name: DiffusionEngine(lm, **kw) for name, kw in settings.items()}
        if args.remask:
            examples = planner.examples(args.remask, random.Random(f"reveal-passes/{task}/remask"))
            print(f"\n{task} ({engines['one position a step'].settings.alg} order), re-masking rounds, "
                  f"{args.remask} problems:\n\n{remask_table(engines, planner, examples)}", flush=True)
            continue
        examples = planner.examples(args.n, random.Random(f"reveal-passes/{task}"))
        results, seconds = {}, {}
        for name, engine in engines.items():
            start = time.perf_counter()
            results[name] = model_only(engine, planner, examples, args.batch)
            seconds[name] = time.perf_counter() - start
            check_against_solve(engine, planner, examples[:args.check], results[name][:args.check])
        print(f"\n{task} ({engines['one position a step'].settings.alg} order), model-only round, "
              f"{args.n} generated problems:\n\n{table(task, examples, results, seconds)}", flush=True)


if __name__ == "__main__":
    main()
