"""`DiffusionTrainer`: transformers' `Trainer` with the masked-diffusion loss, and its callbacks.

    trainer = DiffusionTrainer(model=model, args=args, train_dataset=PlannerStream(planner),
                               data_collator=PlannerCollator(planner, tok), loss=DiffusionLoss())
    trainer.train()

Only `compute_loss` changes, so everything else Trainer does (accelerate launch with DDP,
FSDP or DeepSpeed, mixed precision, gradient accumulation, checkpoints, resuming) works
unchanged. The batch keeps its `maskable` column, so `remove_unused_columns` must be off;
`diffusion_training_args` sets that and the other settings this loss needs.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from dream_agent.model.diffusion_lm import DreamDiffusionLM
from dream_agent.sampler import denoise
from planners.base import Planner

from .data import MemoTokenizer
from .losses import DiffusionLoss, diffusion_loss

COMPLETE = "dream-agent-complete.json"  # written last into a checkpoint: its presence means "whole"


def diffusion_training_args(output_dir: str | os.PathLike, **kwargs) -> TrainingArguments:
    """TrainingArguments with what the diffusion loss needs; any field may be overridden."""
    defaults = dict(
        remove_unused_columns=False,  # keep `maskable`
        report_to=[],
        disable_tqdm=True,
        lr_scheduler_type="cosine",
        warmup_steps=0,
        weight_decay=0.01,
        dataloader_num_workers=0,
    )
    defaults.update(kwargs)
    return TrainingArguments(output_dir=str(output_dir), **defaults)


class DiffusionTrainer(Trainer):
    """A `Trainer` whose loss is `diffusion_loss` (forward masking + weighted masked CE)."""

    def __init__(self, *args, loss: DiffusionLoss | None = None, mask_token_id: int | None = None,
                 shift_logits: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_config = loss or DiffusionLoss()
        self.mask_token_id = mask_token_id
        self.shift_logits = shift_logits

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = diffusion_loss(model, inputs, self.loss_config, mask_token_id=self.mask_token_id,
                             shift_logits=self.shift_logits, generator=self._noise_generator(inputs["input_ids"].device))
        return (out.loss, out) if return_outputs else out.loss

    def _noise_generator(self, device) -> torch.Generator:
        """The forward process's randomness as a function of (seed, step, micro-batch, process).

        So a resumed run draws exactly the masks the uninterrupted run would have, whatever
        else consumed the global RNG in between (DataLoader iterators, evaluation).
        """
        step = self.state.global_step
        if step != getattr(self, "_noise_step", None):
            self._noise_step, self._noise_calls = step, 0
        self._noise_calls += 1
        key = hash((self.args.seed, step, self._noise_calls, self.args.process_index)) & 0x7FFF_FFFF_FFFF_FFFF
        return torch.Generator(device=device).manual_seed(key)


def find_resumable(checkpoints: str | os.PathLike) -> Path | None:
    """The newest checkpoint that was written completely, or None.

    Trainer writes a checkpoint file by file; a run killed half-way leaves a directory
    without the marker `CompleteCheckpoints` writes last, and resuming skips it.
    """
    root = Path(checkpoints)
    if not root.is_dir():
        return None
    done = [p for p in root.glob("checkpoint-*") if (p / COMPLETE).is_file() and p.name.split("-")[-1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def read_marker(checkpoint: str | os.PathLike) -> dict:
    return json.loads((Path(checkpoint) / COMPLETE).read_text())


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class CompleteCheckpoints(TrainerCallback):
    """Marks each checkpoint complete once Trainer has written all of it, with the wall time so far.

    `elapsed` carries the wall time of earlier (interrupted) sessions of the same run.
    """

    def __init__(self, elapsed: float = 0.0):
        self.elapsed = elapsed
        self.started = time.time()

    def wall_time(self) -> float:
        return self.elapsed + time.time() - self.started

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if path.is_dir():
                write_json_atomic(path / COMPLETE, {"step": state.global_step, "wall_seconds": self.wall_time()})


class SolveRateCallback(TrainerCallback):
    """Every `every` steps, the share of a held-out generated set the model alone solves.

    Model only: the planner's template, one denoising pass (one position a step, entropy
    order), the validator, no constraint hooks and no refinement. Logged as `solve_rate`.
    """

    def __init__(self, planner: Planner, tokenizer, *, every: int = 500, n: int = 64, seed: int = 12345,
                 batch_size: int = 64):
        self.planner, self.every, self.batch_size = planner, every, batch_size
        self.tokenizer = MemoTokenizer(tokenizer)
        # A seed no training stream uses (streams seed with "dream-agent/<seed>/<chunk>").
        # A planner drawing from a fixed pool of solved problems keeps some apart (`heldout_examples`).
        draw = getattr(planner, "heldout_examples", planner.examples)
        self.problems = [ex.problem for ex in draw(n, random.Random(f"heldout/{seed}"))]
        self.history: list[tuple[int, float]] = []

    def solve_rate(self, model) -> float:
        was_training = model.training
        lm = DreamDiffusionLM(model, self.tokenizer)
        solved = 0
        for i in range(0, len(self.problems), self.batch_size):
            chunk = self.problems[i : i + self.batch_size]
            templates = [self.planner.encode(p, self.tokenizer) for p in chunk]
            steps = max(int(t.masked.sum()) for t in templates)
            result = denoise(lm, templates, steps=steps, alg="entropy")
            for b, (p, t) in enumerate(zip(chunk, templates)):
                solution = self.planner.decode(p, t, result.row_ids(b))
                solved += not self.planner.check(p, solution)
        model.train(was_training)
        return solved / max(len(self.problems), 1)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if model is not None and self.every and state.global_step % self.every == 0:
            rate = self.solve_rate(model)
            self.history.append((state.global_step, rate))
            state.log_history.append({"step": state.global_step, "solve_rate": rate})
