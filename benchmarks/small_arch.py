"""Which small architecture learns planner tasks best on a CPU budget?

    python benchmarks/small_arch.py --seconds 120 --threads 1

Trains each candidate from scratch for the same wall time on the same generated stream,
then reports the masked-diffusion loss on a fixed held-out batch (fixed masks) and the
model-only solve rate (one unconstrained denoising pass) on held-out generated problems.
Candidates: Dream's own recipe (RoPE only) against RoPE plus learned absolute positions
(a structure hint: on a grid, position = cell), and width against depth at ~0.7M parameters.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time

import torch
from transformers import TrainerCallback

from dream_agent.model import DreamModel
from dream_agent.tokenization import char_tokenizer
from dream_agent.training import (DiffusionLoss, DiffusionTrainer, PlannerCollator, PlannerStream, SolveRateCallback,
                                  context_for, count_parameters, diffusion_loss, diffusion_training_args, small_config)
from dream_agent.training.small import SmallSize
from planners.countdown import CountdownPlanner
from planners.sudoku import SudokuPlanner

CANDIDATES = {
    "rope only (Dream), 128x4": (SmallSize(128, 4, 4, 4, 256), False),
    "rope + abs pos, 128x4": (SmallSize(128, 4, 4, 4, 256), True),
    "rope + abs pos, 192x2 (wide)": (SmallSize(192, 2, 6, 6, 384), True),
    "rope + abs pos, 96x7 (deep)": (SmallSize(96, 7, 4, 4, 192), True),
}
TASKS = {
    "sudoku 4x4+6x6": lambda: SudokuPlanner(sizes=(4, 6)),
    "countdown 3": lambda: CountdownPlanner(sizes=(3,)),
}


class StopAfter(TrainerCallback):
    def __init__(self, seconds: float):
        self.deadline = time.time() + seconds

    def on_step_end(self, args, state, control, **kwargs):
        if time.time() > self.deadline:
            control.should_training_stop = True


def heldout_loss(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        return sum(float(diffusion_loss(model, batch, DiffusionLoss(), generator=torch.Generator().manual_seed(s)).loss)
                   for s in range(8)) / 8


def run(task: str, name: str, seconds: float, batch_size: int) -> tuple[int, float, float, int]:
    planner = TASKS[task]()
    tok = char_tokenizer(planner.alphabet)
    size, absolute = CANDIDATES[name]
    torch.manual_seed(0)
    model = DreamModel(small_config(tok, size=size, max_length=context_for(planner, tok), absolute_positions=absolute))
    with tempfile.TemporaryDirectory() as tmp:
        args = diffusion_training_args(tmp, max_steps=10**6, per_device_train_batch_size=batch_size, learning_rate=1e-3,
                                       warmup_steps=50, lr_scheduler_type="constant_with_warmup", save_strategy="no",
                                       logging_steps=10**6, use_cpu=True)
        trainer = DiffusionTrainer(model=model, args=args, train_dataset=PlannerStream(planner, seed=0, chunk_size=batch_size),
                                   data_collator=PlannerCollator(planner, tok), callbacks=[StopAfter(seconds)])
        trainer.train()
    held = PlannerCollator(planner, tok)(planner.examples(256, random.Random("arch-heldout")))
    solve = SolveRateCallback(planner, tok, n=200, seed=999).solve_rate(model.eval())
    return trainer.state.global_step, heldout_loss(model, held), solve, count_parameters(model)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="training wall time per candidate and task")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.seconds:.0f} s of training each, batch {args.batch_size}, {args.threads} thread(s)")
    print("| task | architecture | parameters | steps | held-out loss | model-only solve rate |")
    print("|---|---|---:|---:|---:|---:|")
    for task in TASKS:
        for name in CANDIDATES:
            steps, loss, solve, params = run(task, name, args.seconds, args.batch_size)
            print(f"| {task} | {name} | {params:,} | {steps} | {loss:.3f} | {solve:.1%} |", flush=True)


if __name__ == "__main__":
    main()
