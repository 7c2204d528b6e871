"""The tasks planner's figures on IPC problem files, as Markdown rows: model alone, full system,
the full system with random weights, plan length against Fast Downward's optimal plans.

    python benchmarks/tasks_eval.py --domain ../shared/data/pddl/blocks/domain.pddl \\
        --model dream_agent/bundled/tasks-blocks ../shared/data/pddl/blocks/probBLOCKS-{4,5,6,7,8}-*.pddl
    python benchmarks/tasks_eval.py --domain ../shared/data/pddl/gripper/domain.pddl \\
        --model MODEL ../shared/data/pddl/gripper/prob0{1,2,3,4}.pddl   # a model from `dream-agent train tasks`

Runs what `dream-agent eval tasks` runs (`planners.tasks.evaluation.evaluate_tasks`), one row per
group of files (grouped by --group-by: the problem size in the file name) and a total row.
"""

from __future__ import annotations

import argparse
import platform
import re
from pathlib import Path

import torch

from dream_agent import DiffusionEngine, DreamModel, load_model
from dream_agent.model import DreamDiffusionLM
from planners.tasks.evaluation import evaluate_tasks, summary
from planners.tasks.planner import TasksPlanner


def group_of(path: Path, pattern: str) -> str:
    m = re.search(pattern, path.stem)
    return m.group(1) if m else path.stem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("problems", nargs="+")
    ap.add_argument("--domain", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-rounds", type=int, default=None)
    ap.add_argument("--group-by", default=r"-(\d+)-\d+$", help="regex on the file stem; group 1 names the row")
    ap.add_argument("--no-random", action="store_true", help="skip the random-weight run")
    ap.add_argument("--only-random", action="store_true", help="only the random-weight run (rows show its figures)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    planner = TasksPlanner.for_domain(args.domain).configure(model_dir=args.model)
    files = [Path(p) for p in args.problems]
    problems = [planner.problem(str(p)) for p in files]
    names = [p.stem for p in files]
    lm = load_model(args.model, device="cpu")
    engine = DiffusionEngine(lm)
    kwargs = {} if args.max_rounds is None else {"max_rounds": args.max_rounds}
    random_rows = []
    if args.only_random:
        torch.manual_seed(0)
        lm = DreamDiffusionLM(DreamModel(lm.model.config).eval(), lm.tokenizer, name="random weights")
        engine = DiffusionEngine(lm, alg=engine.settings.alg)
        args.no_random = True
        print("random weights of the model's shape: the model-alone and full-system columns are theirs")
    rows = evaluate_tasks(engine, planner, problems, names, oracle=True, **kwargs)
    if not args.no_random:
        torch.manual_seed(0)
        rlm = DreamDiffusionLM(DreamModel(lm.model.config).eval(), lm.tokenizer, name="random weights")
        random_rows = evaluate_tasks(DiffusionEngine(rlm, alg=engine.settings.alg), planner, problems, names,
                                     oracle=False, **kwargs)
    print(f"tasks · {planner.domain.name}, model {args.model}, alg {engine.settings.alg}; "
          f"{platform.machine()} CPU, {args.threads} threads, torch {torch.__version__}")
    print("| problems | n | model alone | full system | random weights (full) | median length / optimal "
          "| median s | mean NFE |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(files):
        groups.setdefault(group_of(f, args.group_by), []).append(i)
    for label, idx in [*groups.items(), ("all", list(range(len(files))))]:
        s = summary([rows[i] for i in idx])
        r = summary([random_rows[i] for i in idx]) if random_rows else None
        ratio = "n/a" if s["median_length_ratio"] is None else f"{s['median_length_ratio']:.2f}"
        rw = "not run" if r is None else f"{r['valid_rate']:.0%}"
        print(f"| {label} | {s['problems']} | {s['model_only_rate']:.0%} | {s['valid_rate']:.0%} | {rw} | {ratio} "
              f"| {s['median_seconds']:.3f} | {s['mean_nfe']:.0f} |", flush=True)
    for r in rows:
        print(f"  {r.name}: {'valid' if r.valid else 'NOT solved'}, length {r.length} vs optimal {r.optimal}, "
              f"{r.seconds:.2f} s, {r.nfe} NFE, model alone {'valid' if r.model_only_valid else '-'}")


if __name__ == "__main__":
    main()
