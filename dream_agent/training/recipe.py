"""The recipe behind `dream-agent train`: a small Dream model trained from scratch on a planner's data.

    report = train_small_model(get_planner("sudoku"), "models/sudoku", steps=6000)
    load_model("models/sudoku")            # the HF directory it wrote

Data comes only from the planner's own generator (`planner.examples`), fresh every batch,
never from an evaluation file. Checkpoints go to OUT/checkpoints; each is marked complete
only after Trainer has written all of it, and `resume=True` continues from the newest
complete one: same weights, optimizer, schedule, RNG and position in the data stream.
The finished model (safetensors, config, tokenizer, model card) is written to OUT.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PrinterCallback

from dream_agent.errors import DreamAgentError
from dream_agent.model import DreamConfig, DreamModel
from dream_agent.tokenization import char_tokenizer
from planners.base import Planner

from .data import PlannerCollator, PlannerStream
from .losses import DiffusionLoss
from .small import context_for, count_parameters, small_config
from .trainer import (CompleteCheckpoints, DiffusionTrainer, SolveRateCallback, diffusion_training_args,
                      find_resumable, read_marker)


@dataclass
class TrainReport:
    out: Path
    steps: int
    batch_size: int
    examples: int  # generated training examples seen, over every session of the run
    wall_seconds: float  # over every session of the run
    parameters: int
    solve_rate: float | None  # model-only, on the held-out generated set
    heldout: int
    final_loss: float | None
    resumed_from: int = 0
    solve_history: list[tuple[int, float]] = field(default_factory=list)


def train_small_model(
    planner: Planner,
    out: str | os.PathLike,
    *,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    size: str = "small",
    seed: int = 0,
    resume: bool = False,
    loss: DiffusionLoss | None = None,
    save_steps: int | None = None,
    eval_every: int = 0,
    heldout: int = 64,
    callbacks: Sequence = (),
    command: str | None = None,
) -> TrainReport:
    """Train (or resume) a small model for `planner`; write it to `out`; return what happened."""
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise DreamAgentError("steps and batch size must be at least 1 and the learning rate positive")
    out = Path(out)
    check_out_dir(out)
    checkpoints = out / "checkpoints"
    # A planner with its own vocabulary (the tasks planner's words from a PDDL domain) builds its tokenizer.
    tokenizer = planner.tokenizer() if callable(getattr(planner, "tokenizer", None)) else char_tokenizer(planner.alphabet)

    resume_from = find_resumable(checkpoints) if resume else None
    if not resume and checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*")):
        raise DreamAgentError(f"{checkpoints} already holds checkpoints; pass --resume to continue that run, "
                              "or choose another --out")
    if resume_from is not None:
        config = DreamConfig.from_pretrained(resume_from)  # the run's own shapes, whatever --size says now
        marker = read_marker(resume_from)
        done, elapsed = int(marker["step"]), float(marker["wall_seconds"])
    else:
        config = small_config(tokenizer, size=size, max_length=context_for(planner, tokenizer))
        done, elapsed = 0, 0.0
    if done > steps:
        raise DreamAgentError(f"the checkpoint is at step {done}, past --steps {steps}")
    solve_cb = SolveRateCallback(planner, tokenizer, every=eval_every, n=heldout)
    if resume_from is not None and done == steps:
        # The run is finished (Trainer, resumed at max_steps, would still take one more step):
        # write the checkpoint's model as it is.
        model = DreamModel.from_pretrained(resume_from)
        log_history = json.loads((resume_from / "trainer_state.json").read_text())["log_history"]
        global_step, wall = done, elapsed
    else:
        torch.manual_seed(seed)
        args = diffusion_training_args(
            checkpoints,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=lr,
            warmup_steps=min(200, steps // 20),
            save_strategy="steps",
            save_steps=save_steps or max(1, min(500, steps // 4)),
            save_total_limit=2,
            logging_steps=max(1, min(50, steps // 20)),
            seed=seed,
            ignore_data_skip=True,  # the stream below starts where the checkpoint stopped instead
            use_cpu=not torch.cuda.is_available(),
        )
        marker_cb = CompleteCheckpoints(elapsed)
        trainer = DiffusionTrainer(
            model=DreamModel(config),
            args=args,
            train_dataset=PlannerStream(planner, seed, chunk_size=batch_size, start=done * batch_size),
            data_collator=PlannerCollator(planner, tokenizer),
            loss=loss or DiffusionLoss(),
            callbacks=[marker_cb, solve_cb, *callbacks],
        )
        trainer.remove_callback(PrinterCallback)  # logs go to callbacks (the CLI's progress bar), not stdout
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
        model, log_history = trainer.model, trainer.state.log_history
        global_step, wall = trainer.state.global_step, marker_cb.wall_time()

    model = model.eval()
    rate = solve_cb.solve_rate(model) if heldout else None
    losses = [h["loss"] for h in log_history if "loss" in h]
    report = TrainReport(
        out=out, steps=global_step, batch_size=batch_size, examples=global_step * batch_size, wall_seconds=wall,
        parameters=count_parameters(model), solve_rate=rate, heldout=heldout,
        final_loss=losses[-1] if losses else None, resumed_from=done, solve_history=solve_cb.history,
    )
    extra = planner.model_files() if callable(getattr(planner, "model_files", None)) else {}
    write_model_dir(out, model, tokenizer, model_card(planner, report, command, config), extra)
    return report


def check_out_dir(out: Path) -> None:
    """`--out` is a directory, or nothing yet: a `DreamAgentError` before any training starts otherwise."""
    if out.exists() and not out.is_dir():
        raise DreamAgentError(f"--out {out} is a file; name a directory (new or one from an earlier run)")
    if any(p.exists() and not p.is_dir() for p in out.parents):
        raise DreamAgentError(f"--out {out} lies under a file; name a directory")


def write_model_dir(out: Path, model, tokenizer, card: str, extra: dict[str, str] | None = None) -> None:
    """Save model, tokenizer and card next to each other, each file moved into place whole.

    Every file gets the permissions a plain write would (0666 less the umask): safetensors writes
    the weights through a private temporary file, which would otherwise leave them 0600."""
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "README.md").write_text(card)
    for name, text in (extra or {}).items():  # files a planner needs beside its model (the tasks planner's domain)
        (staging / name).write_text(text)
    umask = os.umask(0)
    os.umask(umask)
    for item in staging.iterdir():
        if item.is_file():
            os.chmod(item, 0o666 & ~umask)
        os.replace(item, out / item.name)
    staging.rmdir()


def model_card(planner: Planner, report: TrainReport, command: str | None, c: DreamConfig) -> str:
    solve = "not measured" if report.solve_rate is None else f"{report.solve_rate:.1%}"
    lines = [
        f"# dream-agent {planner.name} model",
        "",
        f"A small Dream-architecture masked diffusion model (DreamModel, bidirectional attention) trained "
        f"from scratch by dream-agent for the `{planner.name}` planner: {planner.description}",
        "",
        "## Architecture",
        "",
        f"- {report.parameters:,} parameters: hidden {c.hidden_size}, {c.num_hidden_layers} layers, "
        f"{c.num_attention_heads} heads ({c.num_key_value_heads} KV), MLP {c.intermediate_size}, "
        f"vocabulary {c.vocab_size} ({'one token a word' if callable(getattr(planner, 'tokenizer', None)) else 'one token a character'}), context {c.absolute_position_embeddings or c.max_position_embeddings}",
        f"- shift_logits={c.shift_logits}, learned absolute positions: {c.absolute_position_embeddings is not None}",
        "",
        "## Training",
        "",
        f"- Command: `{command or 'dream-agent train ' + planner.name}`",
        f"- Data: {report.examples:,} examples " + (getattr(planner, "data_note", "") or
            f"generated by `{planner.name}`'s own generator (fresh each batch; no evaluation file was used)"),
        f"- Steps: {report.steps:,} of batch {report.batch_size}",
        f"- Wall time: {format_duration(report.wall_seconds)} on {platform.machine()} "
        f"({torch.get_num_threads()} torch threads, {'CUDA' if torch.cuda.is_available() else 'CPU'})",
        f"- Final training loss: {report.final_loss:.4f}" if report.final_loss is not None else "- Final training loss: n/a",
        "",
        "## Evaluation (written by the trainer)",
        "",
        f"- Model alone (one unconstrained denoising pass, no refinement) on {report.heldout} held-out "
        f"generated problems: {solve} solved",
    ]
    for step, rate in report.solve_history:
        lines.append(f"  - step {step}: {rate:.1%}")
    lines.append("")
    return "\n".join(lines)


def format_duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
