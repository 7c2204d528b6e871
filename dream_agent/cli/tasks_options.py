"""The tasks planner's own command-line pieces, called by the generic `solve`, `train` and `eval`.

    dream-agent solve tasks --domain D.pddl --problem P.pddl [--anchor "3:(pick-up b)"] [--forbid A]
                            [--before A B] [--max-steps N] [--json] [--dot plan.dot] [--show] [--model M]
    dream-agent train tasks --domain D.pddl [--problem P.pddl | --data solved.jsonl] --out M
    dream-agent eval tasks --domain D.pddl --problems DIR [--model M]

Kept apart so the generic commands stay planner-agnostic: each calls in here when the planner
is `tasks`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import click
import typer

from dream_agent.errors import DreamAgentError

DEFAULT_DATA_PROBLEMS = 1500  # oracle-solved problems `train tasks --problem P` makes from a user's problem


# ---- train -------------------------------------------------------------------------------


def training_planner(domain: str | None, problem: str | None, data: str | None, max_steps: int | None, out: Path,
                     n_problems: int = DEFAULT_DATA_PROBLEMS, log=None):
    """The tasks planner for `train`: its domain, and oracle-solved problems to train on."""
    from planners.tasks.dataset import read_records, record_task, solve_into
    from planners.tasks.domain import Domain
    from planners.tasks.generators import from_problem
    from planners.tasks.planner import TasksPlanner, limits_of

    if domain is None:
        raise DreamAgentError("train tasks needs --domain FILE (and --problem FILE or --data FILE)")
    dom = Domain.from_file(domain)
    if data is None:
        if problem is None:
            raise DreamAgentError("train tasks needs --problem FILE (problems are generated from it) or --data FILE")
        user = dom.read_problem(problem)
        data = str(out / "data.jsonl")
        solve_into(data, lambda rng: from_problem(user, rng), n_problems, max_len=max_steps, log=log)
    records = read_records(data)
    if not records:
        raise DreamAgentError(f"{data} holds no solved problems")
    tasks_plans = [record_task(dom, r) for r in records]
    longest = max(len(p) for _, p in tasks_plans)
    steps = max_steps or longest + max(2, longest // 5)  # room for plans a little longer than the oracle's
    random.Random(0).shuffle(records)
    return TasksPlanner(dom, max_steps=steps, max_objects=limits_of([t for t, _ in tasks_plans]), records=records)


# ---- solve -------------------------------------------------------------------------------


def _tasks_command():
    @click.command(context_settings={"help_option_names": []})
    @click.option("--domain", required=True)
    @click.option("--problem", required=True)
    @click.option("--anchor", multiple=True)
    @click.option("--forbid", multiple=True)
    @click.option("--before", nargs=2, multiple=True)
    @click.option("--max-steps", type=click.IntRange(min=1), default=None)
    @click.option("--dot", default=None)
    def parse(**kwargs):
        return kwargs

    return parse


def parse_solve_args(tokens: list[str]) -> dict:
    """The tasks options among `solve`'s extra arguments (one-line errors for bad ones)."""
    try:
        return _tasks_command().main(args=list(tokens), standalone_mode=False, prog_name="dream-agent solve tasks")
    except click.UsageError as e:
        raise DreamAgentError(e.format_message().splitlines()[0]) from None


def model_dir(planner_name: str, model: str | None, domain_name: str) -> str:
    from dream_agent.model import loading

    if model is not None:
        return model
    name = f"tasks-{domain_name}"
    bundled = loading.bundled_models()
    if name not in bundled:
        raise DreamAgentError(f"no bundled model for domain {domain_name!r} (bundled: "
                              f"{', '.join(n for n in bundled if n.startswith('tasks-')) or 'none'}); pass --model DIR "
                              f"or train one with `dream-agent train tasks --domain D --problem P --out DIR`")
    return str(bundled[name])


def setup(opts: dict, model: str | None):
    """(planner, problem, model path): everything checked before the model stack loads."""
    from planners.tasks.planner import TasksPlanner
    from planners.tasks.domain import Domain

    dom = Domain.from_file(opts["domain"])
    path = model_dir("tasks", model, dom.name)
    if not (Path(path) / "tasks.json").is_file() and Path(path).is_dir():
        raise DreamAgentError(f"{path} is not a tasks model (no tasks.json beside it)")
    planner = TasksPlanner(dom).configure(model_dir=path)
    if opts.get("max_steps"):
        if opts["max_steps"] > planner.max_steps:
            raise DreamAgentError(f"--max-steps {opts['max_steps']} is more than the model's {planner.max_steps} plan "
                                  f"slots (its context); choose at most {planner.max_steps}")
        planner.max_steps = opts["max_steps"]
    problem = planner.problem(opts["problem"], anchors=opts["anchor"], forbid=opts["forbid"], before=opts["before"])
    planner.encode(problem, planner.tokenizer())  # a template past the model's context fails here, in one line
    return planner, problem, path


def solve_tasks(tokens: list[str], *, model, device, alg, steps, max_rounds, constraints, search, seed,
                as_json: bool, show: bool, threshold=None, entropy_bound=None) -> None:
    opts = parse_solve_args(tokens)
    planner, problem, path = setup(opts, model)
    from planners.tasks.graph import dependency_graph, graph_json, layers, to_dot

    from dream_agent.refine import rounds_for, solve

    from .solve import load_engine, plural, stats_line

    engine = load_engine(planner, path, device, alg, threshold=threshold, entropy_bound=entropy_bound)
    from planners.tasks.vocab import check_vocabulary

    check_vocabulary(engine.tokenizer, planner.domain)
    max_rounds = rounds_for(planner, max_rounds)
    result = solve(engine, planner, problem, steps=steps, max_rounds=max_rounds, constraints=constraints,
                   search=search, seed=seed)
    plan = planner.plan(problem, result.solution)
    graph = dependency_graph(problem.task, plan) if result.valid else None
    if opts["dot"] and graph is not None:
        Path(opts["dot"]).write_text(to_dot(problem.task, graph))
    unsolved = (f"no valid plan within {planner.max_steps} steps: the search tried every fill the constraints allow"
                if result.exhausted else f"no valid plan within the budget ({plural(max_rounds, 'round')})")
    if as_json:
        if not result.valid:
            typer.echo(f"dream-agent: {unsolved}", err=True)
        out = {"plan": planner.plan_text(problem, result.solution), "valid": result.valid,
               "violations": [v.to_dict() for v in result.violations],
               "graph": graph_json(problem.task, graph) if graph is not None else None,
               "stats": {"nfe": result.nfe, "rounds": result.rounds, "seconds": round(result.seconds, 4),
                         "model_only_valid": result.model_only_valid, "exhausted": result.exhausted,
                         "steps": len(plan)}}
        typer.echo(json.dumps(out))
    else:
        typer.echo(planner.render(problem, result.solution))
        if result.valid:
            typer.echo(f"valid plan of {plural(len(plan), 'step')}: {stats_line(result)}")
            if show:
                for i, layer in enumerate(layers(graph), start=1):
                    typer.echo(f"  layer {i}: " + "  ".join(problem.task.show_step(plan[k]) for k in layer))
            if opts["dot"]:
                typer.echo(f"dependency graph written to {opts['dot']}")
        else:
            typer.echo(f"{unsolved}; the best plan above breaks {plural(len(result.violations), 'rule')}:")
            for v in result.violations[:10]:
                typer.echo(f"  - {v.message}")
            typer.echo(stats_line(result))
    if not result.valid:
        raise typer.Exit(1)


# ---- eval --------------------------------------------------------------------------------


def eval_tasks(*, domain: str | None, problems_dir: str | None, model: str | None, device: str, alg, limit: int | None,
               max_rounds, random_weights: bool, oracle: bool, seed: int, as_json: bool, threshold=None,
               entropy_bound=None) -> None:
    """Solve every problem file in a directory: trained model (alone and full system), then a
    random-weight model of the same shape (full system), with Fast Downward's optimal length beside."""
    from planners.tasks.domain import Domain
    from planners.tasks.planner import TasksPlanner

    if domain is None or problems_dir is None:
        raise DreamAgentError("eval tasks needs --domain FILE and --problems DIR")
    dom = Domain.from_file(domain)
    path = model_dir("tasks", model, dom.name)
    planner = TasksPlanner(dom).configure(model_dir=path)
    folder = Path(problems_dir)
    if not folder.is_dir():
        raise DreamAgentError(f"{problems_dir} is not a directory of PDDL problem files")
    files = sorted((p for p in folder.glob("*.pddl") if "domain" not in p.name.lower()), key=_natural_name)[:limit]
    if not files:
        raise DreamAgentError(f"{problems_dir} holds no .pddl problem files")
    problems = [planner.problem(str(p)) for p in files]  # bad files fail here, before the model loads

    from rich import box
    from rich.console import Console
    from rich.table import Table

    from dream_agent.refine import rounds_for
    from planners.tasks.evaluation import evaluate_tasks, row_dict, summary

    from .solve import load_engine

    # the random-weight figure builds a DreamModel of the same config: transformers' runtime
    engine = load_engine(planner, path, device, alg, threshold=threshold, entropy_bound=entropy_bound,
                         runtime="transformers" if random_weights else "auto")
    kwargs = dict(max_rounds=rounds_for(planner, max_rounds), seed=seed)
    names = [p.stem for p in files]
    err = Console(stderr=True)
    rows = evaluate_tasks(engine, planner, problems, names, oracle=oracle,
                          on_row=lambda r: err.print(f"{r.name}: {'valid' if r.valid else 'not solved'} "
                                                     f"{r.length} vs {r.optimal} in {r.seconds:.2f} s"), **kwargs)
    out = {"planner": "tasks", "domain": dom.name, "problems": problems_dir, "model": path, **summary(rows),
           "rows": [row_dict(r) for r in rows]}
    if random_weights:
        from dream_agent import DiffusionEngine
        from dream_agent.model import DreamModel
        from dream_agent.model.diffusion_lm import DreamDiffusionLM

        import torch

        torch.manual_seed(seed)
        lm = engine.model
        random_lm = DreamDiffusionLM(DreamModel(lm.model.config).eval(), lm.tokenizer, name="random weights")
        random_rows = evaluate_tasks(DiffusionEngine(random_lm, alg=engine.settings.alg, threshold=engine.settings.threshold,
                                                     entropy_bound=engine.settings.entropy_bound), planner, problems, names,
                                     oracle=False, **kwargs)
        out["random_weights"] = summary(random_rows)
    if as_json:
        typer.echo(json.dumps(out))
        return
    table = Table(title=f"tasks · {dom.name} · {problems_dir}", box=box.SIMPLE_HEAVY)
    for col in ("problem", "full system", "model alone", "length", "optimal (FD)", "seconds", "NFE"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r.name, "valid" if r.valid else "-", "valid" if r.model_only_valid else "-",
                      str(r.length or "-"), str(r.optimal or "-"), f"{r.seconds:.2f}", str(r.nfe))
    Console().print(table)
    s = out
    ratio = "n/a" if s["median_length_ratio"] is None else f"{s['median_length_ratio']:.2f}x"
    typer.echo(f"full system {100 * s['valid_rate']:.1f}% valid, model alone {100 * s['model_only_rate']:.1f}%, "
               f"median length {ratio} of optimal, median {s['median_seconds']:.3f} s")
    if random_weights:
        rw = out["random_weights"]
        typer.echo(f"random weights (full system): {100 * rw['valid_rate']:.1f}% valid, "
                   f"model alone {100 * rw['model_only_rate']:.1f}%, median {rw['median_seconds']:.3f} s")


def _natural_name(p: Path):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.stem)]
