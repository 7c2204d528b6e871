"""`dream-agent train PLANNER --out DIR`: train a small model on the planner's generated data."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .main import app


@app.command("train")
def train(
    planner: str = typer.Argument(..., help="A registered planner (see `dream-agent planners`)."),
    out: Path = typer.Option(..., "--out", help="Directory for checkpoints and the finished model."),
    steps: int = typer.Option(1000, min=1, help="Optimizer steps in all (a resumed run counts the earlier ones)."),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr", min=0.0),
    size: str = typer.Option("small", help="Model size: tiny, small or wide."),
    seed: int = typer.Option(0, help="Seeds the model and the data stream."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint in OUT."),
    loss_weight: str = typer.Option("inverse_t", "--loss-weight", help="inverse_t, linear, cart or none."),
    eval_every: int = typer.Option(0, "--eval-every", min=0, help="Held-out solve rate every N steps (0: only at the end)."),
    heldout: int = typer.Option(64, min=0, help="Held-out generated problems for the solve rate."),
    threads: int = typer.Option(0, min=0, help="CPU threads for torch (0: torch's default)."),
    domain: str = typer.Option(None, "--domain", help="tasks: the PDDL domain file."),
    problem: str = typer.Option(None, "--problem", help="tasks: a problem file to generate training problems from."),
    data: str = typer.Option(None, "--data", help="tasks: oracle-solved problems (JSONL from planners.tasks.dataset)."),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="tasks: plan slots (default: from the data)."),
    data_problems: int = typer.Option(1500, "--data-problems", min=1,
                                      help="tasks: problems generated from --problem and solved by the oracle."),
) -> None:
    """Train a small diffusion model for PLANNER on data its own generator makes."""
    from dream_agent.errors import DreamAgentError

    if out.exists() and not out.is_dir():  # before the training stack loads (the recipe checks it too)
        raise DreamAgentError(f"--out {out} is a file; name a directory (new or one from an earlier run)")
    import torch

    from dream_agent.training.losses import DiffusionLoss
    from dream_agent.training.progress import RichProgressCallback
    from dream_agent.training.recipe import format_duration, train_small_model
    from planners import get_planner

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # checkpoint-writing bars would break the training bar
    if threads:
        torch.set_num_threads(threads)
    plan = get_planner(planner)
    if plan.name == "tasks":
        from .tasks_options import training_planner

        log = lambda m: typer.echo(m, err=True)  # noqa: E731
        plan = training_planner(domain, problem, data, max_steps, out, n_problems=data_problems, log=log)
    loss = DiffusionLoss(weight=loss_weight)
    command = "dream-agent " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    console = Console(stderr=True)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.0f} ex/s"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        report = train_small_model(
            plan, out, steps=steps, batch_size=batch_size, lr=lr, size=size, seed=seed, resume=resume, loss=loss,
            eval_every=eval_every, heldout=heldout, callbacks=[RichProgressCallback(progress, batch_size)], command=command,
        )
    solve = "n/a" if report.solve_rate is None else f"{report.solve_rate:.1%}"
    typer.echo(f"wrote {report.out} ({report.parameters:,} parameters, {report.steps} steps, "
               f"{format_duration(report.wall_seconds)}; held-out model-only solve rate {solve})")
