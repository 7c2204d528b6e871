"""`dream-agent eval PLANNER --data FILE`: solve a dataset, print solve rate and speed as a table.

    dream-agent eval sudoku --data ../shared/data/sudoku/top95.txt
    dream-agent eval countdown --data cd4_test.jsonl --limit 100 --json
    dream-agent eval sudoku --data sudoku_4x4_8.jsonl --plot curve.png --plot-steps 1,2,4,8

The numbers come from `dream_agent.evaluation`, which benchmark scripts call directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dream_agent.errors import DreamAgentError

from .main import app
from .solve import (DEFAULT_BATCH, AlgOpt, BatchSizeOpt, ConstraintsOpt, DeviceOpt, EntropyBoundOpt, ModelOpt,
                    PlannerArg, RoundsOpt, SamplesOpt, SearchOpt, StepsOpt, ThreadsOpt, ThresholdOpt, load_engine)

PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")  # formats matplotlib's Agg canvas writes


def check_plot_path(plot: str) -> None:
    """`--plot` is checked before the evaluation runs: an image extension (so the file written is the
    path named), a directory that exists, and permission to write there."""
    path = Path(plot).expanduser()
    if path.is_dir():
        raise DreamAgentError(f"--plot {plot} is a directory; name an image file such as curve.png")
    if path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise DreamAgentError(f"--plot {plot} needs an image extension: {', '.join('.' + f for f in PLOT_FORMATS)}")
    parent = path.parent
    if not parent.is_dir():
        raise DreamAgentError(f"--plot {plot}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DreamAgentError(f"--plot {plot}: no permission to write there")


def metrics_table(rows, *, title: str, caption: str = "") -> Table:
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAVY)
    for name in ("steps", "problems", "solved", "model only", "mean NFE", "mean rounds", "median s", "p95 s",
                 "problems/s"):
        table.add_column(name, justify="right")
    for m in rows:
        table.add_row(
            "auto" if m.steps is None else str(m.steps),
            str(m.problems),
            f"{100 * m.solve_rate:.1f}%",
            f"{100 * m.model_only_rate:.1f}%",
            f"{m.mean_nfe:.1f}",
            f"{m.mean_rounds:.2f}",
            f"{m.median_seconds:.3f}",
            f"{m.p95_seconds:.3f}",
            f"{m.problems_per_second:.2f}",
        )
    return table


@app.command("eval")
def eval_command(
    planner_name: PlannerArg,
    data: Annotated[str | None, typer.Option(help="evaluation file the planner reads (e.g. .jsonl, .txt)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N problems")] = None,
    model: ModelOpt = None,
    steps: StepsOpt = None,
    max_rounds: RoundsOpt = None,
    constraints: ConstraintsOpt = True,
    search: SearchOpt = True,
    samples: SamplesOpt = 1,
    alg: AlgOpt = None,
    threshold: ThresholdOpt = None,
    entropy_bound: EntropyBoundOpt = None,
    seed: Annotated[int, typer.Option(help="random seed (problem i uses seed + i)")] = 0,
    batch_size: BatchSizeOpt = DEFAULT_BATCH,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    plot: Annotated[str | None, typer.Option(help="draw solve rate against steps into this image (PNG)")] = None,
    plot_steps: Annotated[str | None, typer.Option(
        help="step counts for --plot, e.g. 4,8,16 (default: 1/16 of the masks up to all of them)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the metrics as one JSON line on stdout")] = False,
    check_references: Annotated[bool, typer.Option(
        "--check-references", help="no model: every reference solution must pass the validators, a null one fail")] = False,
    domain: Annotated[str | None, typer.Option(help="tasks: the PDDL domain file")] = None,
    problems_dir: Annotated[str | None, typer.Option("--problems", help="tasks: a directory of PDDL problem files")] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights/--no-random-weights",
                                                 help="tasks: also a random-weight model's full-system figure")] = True,
) -> None:
    """Solve every problem in a dataset; report full-system solve rate beside the model alone."""
    from planners import get_planner

    if planner_name == "tasks":  # PDDL problem files, the oracle's lengths beside ours: see tasks_options
        from .tasks_options import eval_tasks

        return eval_tasks(domain=domain, problems_dir=problems_dir or data, model=model, device=device, alg=alg,
                          limit=limit, max_rounds=max_rounds, random_weights=random_weights, oracle=True, seed=seed,
                          as_json=as_json, threshold=threshold, entropy_bound=entropy_bound)
    if data is None:
        raise DreamAgentError("eval needs --data FILE")

    planner = get_planner(planner_name)
    if plot:
        check_plot_path(plot)
    try:
        examples = planner.load_dataset(data)
    except NotImplementedError as e:
        raise DreamAgentError(str(e)) from None
    if check_references:
        from .references import references_command

        raise typer.Exit(references_command(planner, data, examples[:limit], as_json))
    problems = [ex.problem for ex in examples][:limit]
    if not problems:
        raise DreamAgentError(f"{data} holds no problems")
    # Bad input has failed by now, before the model stack (torch, transformers) loads.
    from dream_agent.evaluation import default_plot_steps, evaluate, parse_steps_list
    from dream_agent.refine import rounds_for

    max_rounds = rounds_for(planner, max_rounds)
    curve_steps = parse_steps_list(plot_steps) if plot_steps is not None else None  # bad lists fail before the model loads
    engine = load_engine(planner, model, device, alg, threads, threshold, entropy_bound)
    if plot and curve_steps is None:
        curve_steps = default_plot_steps(planner, problems, engine.tokenizer)
    settings = dict(max_rounds=max_rounds, constraints=constraints, search=search, samples=samples, seed=seed,
                    batch_size=batch_size)

    configs = [steps] + [s for s in (curve_steps or []) if s != steps]  # the --steps row first, then the curve
    results = {}
    # Progress on stderr and gone when done: stdout holds only the table (or the JSON line).
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("solved {task.fields[solved]}"), console=Console(stderr=True), transient=True) as progress:
        for s in configs:
            label = f"{planner.name} · steps {'auto' if s is None else s}"
            task = progress.add_task(label, total=len(problems), solved=0)
            solved = 0

            def advance(i, result, task=task):
                nonlocal solved
                solved += result.valid
                progress.update(task, advance=1, solved=solved)

            results[s] = evaluate(engine, planner, problems, steps=s, on_result=advance, **settings).metrics

    headline = results[steps]
    curve = [results[s] for s in curve_steps] if curve_steps else []
    if as_json:
        out = {"planner": planner.name, "data": data, "alg": engine.settings.alg, **headline.to_dict()}
        if curve:
            out["curve"] = [m.to_dict() for m in curve]
        typer.echo(json.dumps(out))
        if plot:
            write_plot(curve, plot, planner.name)
        return
    rows = [headline] + [m for m in curve if m is not headline]
    what = ("re-masking rounds without constraint hooks" if not constraints
            else "constraint hooks and backtracking search" if search else "constraint hooks and re-masking rounds")
    caption = (f"solved: full system ({what}, up to {max_rounds} rounds); model only: its first, unconstrained pass; "
               f"steps auto = one per masked position; order {engine.settings.alg}; "
               f"{batch_size} problems a batch (seconds are latencies in it)")
    Console().print(metrics_table(rows, title=f"{planner.name} · {data}", caption=caption))
    if plot:
        write_plot(curve, plot, planner.name)
        typer.echo(f"plot written to {plot}")


def write_plot(curve, plot: str, title: str) -> None:
    """After the table is printed: a write that still fails (disk full, say) loses no figures."""
    from dream_agent.evaluation import plot_curve

    try:
        plot_curve(curve, plot, title=title)
    except OSError as e:
        raise DreamAgentError(f"cannot write --plot {plot}: {e.strerror or e}") from None
