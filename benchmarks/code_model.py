"""The code planner's three figures: model alone, full system, and full system with random weights.

    python benchmarks/code_model.py --model dream_agent/bundled/code --heldout 50
    python benchmarks/code_model.py --model dream_agent/bundled/code --data ../shared/data/code/HumanEval-SingleLineInfilling.jsonl.gz --limit 30

Held-out generated tasks come from `CodePlanner.examples` with a seed training never uses
("code-heldout"); HumanEval rows are read as they are (first `--limit` rows). The random-weight
model has the trained model's config and tokenizer and freshly initialised weights (seed 0).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dream_agent import DiffusionEngine, DreamModel, load_model  # noqa: E402
from dream_agent.evaluation import evaluate  # noqa: E402
from planners.code import CodePlanner  # noqa: E402


def random_twin(model_dir: str, out: str) -> str:
    from transformers import AutoTokenizer

    trained = load_model(model_dir, device="cpu")
    torch.manual_seed(0)
    DreamModel(trained.model.config).save_pretrained(out)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default=None, help="HumanEval infilling file (default: held-out generated tasks)")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--heldout", type=int, default=50)
    ap.add_argument("--max-rounds", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    planner = CodePlanner()
    if args.data:
        problems = [ex.problem for ex in planner.load_dataset(args.data)[: args.limit]]
    else:
        problems = [ex.problem for ex in planner.examples(args.heldout, random.Random("code-heldout"))]
    out = {"data": args.data or f"generated held-out ({len(problems)})", "max_rounds": args.max_rounds or planner.max_rounds}
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in (("trained", args.model), ("random_weights", random_twin(args.model, tmp))):
            engine = DiffusionEngine(load_model(path, device="cpu"))
            progress = lambda i, r, label=label: print(label, i, r.model_only_valid, r.valid, round(r.seconds, 2),  # noqa: E731
                                                       file=sys.stderr, flush=True)
            m = evaluate(engine, planner, problems, max_rounds=args.max_rounds, on_result=progress).metrics
            out[label] = {"model_only": round(m.model_only_rate, 4), "full_system": round(m.solve_rate, 4),
                          "median_seconds": round(m.median_seconds, 3), "mean_nfe": round(m.mean_nfe, 1)}
            print(label, out[label], file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
