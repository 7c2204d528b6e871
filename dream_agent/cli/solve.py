"""`dream-agent solve PLANNER PROBLEM...`: one problem in, the filled answer and its stats out.

The planner's `parse` reads the problem text, so a planner registered by entry point is
solvable here without changes:

    dream-agent solve sudoku "1.34 34.2 2.4. 4.2."
    dream-agent solve sudoku puzzle.txt --json
    dream-agent solve countdown 86 28 13 31 --target 96 --show
    dream-agent solve countdown --many problems.txt --json      # one problem a line, batched

Exit codes: 0 solved (every problem, with --many), 1 not solved within the budget, 2 bad input.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from dream_agent.errors import DreamAgentError

from .main import app

DEFAULT_BATCH = 32  # dream_agent.evaluation.DEFAULT_BATCH, without importing the model stack

OPTION_LIKE = re.compile(r"^--?[A-Za-z]")  # "-5" is a (negative) value for the planner; "--stpes" a typo
# One argument with a path separator or a file extension ("puzzle.txt", not "1.34"): meant as a file.
PATH_LIKE = re.compile(r"^[^\n]*(/|\\)[^\n]*$|^[^\s]*\.[A-Za-z][A-Za-z0-9]{0,5}$")


def _is_file(text: str) -> bool:
    """A file or a directory of that name exists (a directory is refused by name, not read as a problem)."""
    try:
        return Path(text).is_file() or Path(text).is_dir()
    except OSError:  # e.g. a long multi-line grid is too long a file name: it is the problem itself
        return False


def problem_text(tokens: list[str], target: str | None = None) -> str:
    """The problem as one text: a file's contents (or stdin for "-"), else the arguments joined.

    `--target` is appended as "target: T", a form the countdown planner reads; a planner
    without targets rejects it in its own words."""
    if len(tokens) == 1 and tokens[0] == "-":
        text = sys.stdin.read()
    elif len(tokens) == 1 and (_is_file(tokens[0]) or PATH_LIKE.match(tokens[0])):
        from planners.base import read_text_file

        text = read_text_file(tokens[0], directory="give a problem, or a file holding one")
    else:
        # Unknown options reach here (negative numbers must): name a typo as an option error.
        if typos := [t for t in tokens if OPTION_LIKE.match(t)]:
            raise DreamAgentError(f"no such option: {typos[0]}")
        text = " ".join(tokens)
    if target is not None:
        text = f"{text.strip()} target: {target}"
    if not text.strip():
        raise DreamAgentError("the problem is empty")
    return text


def load_engine(planner, model: str | None, device: str = "auto", alg: str | None = None,
                threads: int | None = None, threshold: float | None = None, entropy_bound: float | None = None,
                runtime: str = "auto"):
    """The engine for `--model`, or for the planner's bundled model when none is given; `alg`
    overrides the remasking order the model ships (else the engine's default); `threads`: torch's
    CPU threads (None: one for a small model on the CPU); `threshold` / `entropy_bound`: a parallel
    reveal rule for the denoising passes (the model-only round's among them), overriding the model's;
    `runtime`: "auto" runs a small CPU model without transformers (`load_model`), the fast start."""
    from dream_agent import DiffusionEngine
    from dream_agent.model import loading

    if model is None:
        if planner.name not in loading.bundled_models():
            raise DreamAgentError(
                f"no bundled {planner.name} model is installed; pass --model DIR "
                f"or train one with `dream-agent train {planner.name} --out DIR`"
            )
        model = planner.name
    lm = loading.load_model(model, device=device, threads="auto" if threads is None else threads, runtime=runtime)
    check_model_fits(planner, lm, model)
    given = {"alg": alg, "threshold": threshold, "entropy_bound": entropy_bound}
    return DiffusionEngine(lm, **{k: v for k, v in given.items() if v is not None})


def check_model_fits(planner, lm, model: str) -> None:
    """A model whose tokenizer lacks the planner's characters was trained for another planner: say so."""
    tok = lm.tokenizer
    if tok is None or not planner.alphabet:
        return
    missing = [ch for ch in dict.fromkeys(planner.alphabet)
               if len(ids := tok.encode(ch, add_special_tokens=False)) != 1 or ids[0] == tok.unk_token_id]
    if missing:
        chars = ", ".join(repr(ch) for ch in missing[:5])
        raise DreamAgentError(f"model {model!r} does not fit the {planner.name} planner: its tokenizer has no token "
                              f"for {chars} (a model trained for another planner?)")


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def stats_line(result) -> str:
    model_only = "valid" if result.model_only_valid else "not valid"
    return (f"{plural(result.rounds, 'round')}, {plural(result.nfe, 'forward pass', 'forward passes')}, {result.seconds:.3f} s "
            f"(model alone, first pass: {model_only})")


# Options `solve` and `eval` share, declared once.
PlannerArg = Annotated[str, typer.Argument(metavar="PLANNER", help="a registered planner (see `dream-agent planners`)")]
ModelOpt = Annotated[str | None, typer.Option(help="model directory or hub id (default: the planner's bundled model)")]
StepsOpt = Annotated[int | None, typer.Option(min=1, help="forward passes a round (default: one per masked position)")]
RoundsOpt = Annotated[int | None, typer.Option(
    min=1, help="denoising rounds in all, the model-only one included (default: the planner's, e.g. 10 for "
                "sudoku, 40 for countdown)")]
ConstraintsOpt = Annotated[bool, typer.Option("--constraints/--no-constraints",
                                              help="the planner's constraint hooks from round 2 on")]
SearchOpt = Annotated[bool, typer.Option("--search/--no-search",
                                         help="after the model-only pass, model-guided backtracking (else re-masking rounds)")]
SamplesOpt = Annotated[int, typer.Option(min=1, help="fills sampled in parallel each refinement round")]
AlgName = Literal["origin", "maskgit_plus", "topk_margin", "entropy"]  # dream_agent.sampler.ALGS, without torch
AlgOpt = Annotated[AlgName | None, typer.Option(
    help="remasking order: which masked position is revealed first (default: the model's own, else entropy)")]


def _above_zero(value: float | None) -> float | None:
    if value is not None and not value > 0:
        raise typer.BadParameter(f"{value} is not above 0")
    return value


ThresholdOpt = Annotated[float | None, typer.Option(
    max=1, callback=_above_zero, metavar="T",
    help="Fast-dLLM reveal: each denoising pass also reveals every position whose token is more probable than T")]
EntropyBoundOpt = Annotated[float | None, typer.Option(
    callback=_above_zero, metavar="G",
    help="EB-sampler reveal: each denoising pass reveals the most confident positions while their summed "
         "entropy, less the largest, stays within G nats")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda, ...")]
BatchSizeOpt = Annotated[int, typer.Option(
    "--batch-size", min=1, help="problems whose searches share each forward pass (results are the same at any size)")]
ThreadsOpt = Annotated[int | None, typer.Option(
    min=1, help="CPU threads for torch (default: 1 for a small model on the CPU, where more only contend)")]


@app.command("solve", context_settings={"ignore_unknown_options": True})
def solve_command(
    planner_name: PlannerArg,
    problem: Annotated[list[str] | None, typer.Argument(
        metavar="PROBLEM", help="the problem text, a file holding it, or - for stdin "
                                "(tasks: --domain D --problem P [--anchor ...] [--forbid ...] "
                                "[--before A B] [--max-steps N] [--dot F])")] = None,
    target: Annotated[str | None, typer.Option(help="the target (countdown), appended to the problem as 'target: T'")] = None,
    model: ModelOpt = None,
    steps: StepsOpt = None,
    max_rounds: RoundsOpt = None,
    constraints: ConstraintsOpt = True,
    search: SearchOpt = True,
    samples: SamplesOpt = 1,
    alg: AlgOpt = None,
    threshold: ThresholdOpt = None,
    entropy_bound: EntropyBoundOpt = None,
    seed: Annotated[int, typer.Option(help="random seed (sampling in refinement rounds)")] = 0,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line of stdout")] = False,
    show: Annotated[bool, typer.Option("--show", help="animate the denoising in the terminal")] = False,
    many: Annotated[str | None, typer.Option(
        "--many", help="a file of problems, one a line (- for stdin): solved together, --batch-size at a time")] = None,
    batch_size: BatchSizeOpt = DEFAULT_BATCH,
) -> None:
    """Solve one problem: the model fills the template, validators check, refinement repairs."""
    from planners import get_planner

    problem = problem or []
    if many is not None:
        if problem or target is not None or show:
            raise DreamAgentError("--many reads every problem from its file: give no PROBLEM, --target or --show with it")
        if planner_name == "tasks":
            raise DreamAgentError("--many takes one-line problems; tasks problems are PDDL files (see `dream-agent eval tasks`)")
        return solve_many_command(get_planner(planner_name), many, model=model, device=device, alg=alg, threads=threads,
                                  threshold=threshold, entropy_bound=entropy_bound, batch_size=batch_size,
                                  as_json=as_json, steps=steps, max_rounds=max_rounds, constraints=constraints,
                                  search=search, samples=samples, seed=seed)
    if not problem:
        raise DreamAgentError("give a problem (text, a file holding it, or - for stdin), or --many FILE")
    if planner_name == "tasks":  # PDDL in: its own options (--domain, --problem, --anchor, ...), see tasks_options
        from .tasks_options import solve_tasks

        return solve_tasks(problem, model=model, device=device, alg=alg, steps=steps, max_rounds=max_rounds,
                           constraints=constraints, search=search, seed=seed, as_json=as_json, show=show,
                           threshold=threshold, entropy_bound=entropy_bound)

    planner = get_planner(planner_name)
    # A planner with options of its own (code: --skeleton F --tests T --forbid NAME) reads the raw arguments.
    from_args = getattr(planner, "problem_from_args", None)
    parsed = from_args(problem) if from_args else planner.parse(problem_text(problem, target))  # fails before the model loads
    from dream_agent.refine import rounds_for, solve

    max_rounds = rounds_for(planner, max_rounds)
    engine = load_engine(planner, model, device, alg, threads, threshold, entropy_bound)

    if show:
        from .live import LiveView

        with LiveView(planner, engine.tokenizer, mask_token_id=engine.model.mask_token_id) as view:
            result = solve(engine, planner, parsed, steps=steps, max_rounds=max_rounds, constraints=constraints,
                           search=search, samples=samples, seed=seed, on_step=view)
        result.seconds = max(result.seconds - view.paused, 0.0)  # report the solving, not the animation's pacing
    else:
        run = getattr(planner, "solve_with", None)  # a planner that wraps `solve` (code: holes tried at several lengths)
        run = (lambda e, pl, pr, **kw: pl.solve_with(e, pr, **kw)) if run else solve
        result = run(engine, planner, parsed, steps=steps, max_rounds=max_rounds, constraints=constraints,
                     search=search, samples=samples, seed=seed)

    if result.exhausted:
        unsolved = "no valid answer fits the template: the search tried every fill the constraints allow"
    elif search and constraints:  # the search counts a round per complete fill; its budget is forward passes
        unsolved = f"not solved: the search spent its budget (--max-rounds {max_rounds}: {result.nfe} forward passes)"
    else:
        unsolved = f"not solved within {plural(max_rounds, 'round')}"
    if as_json:
        if not result.valid:
            typer.echo(f"dream-agent: {unsolved}; {plural(len(result.violations), 'violation')} left", err=True)
        typer.echo(json.dumps(result.to_dict()))
    else:
        typer.echo(planner.render(parsed, result.solution))
        if result.valid:
            typer.echo(f"solved: {stats_line(result)}")
        else:
            typer.echo(f"{unsolved}; the best answer above breaks {plural(len(result.violations), 'rule')}:")
            for v in result.violations:
                typer.echo(f"  - {v.message}")
            typer.echo(stats_line(result))
    if not result.valid:
        raise typer.Exit(1)


def read_problem_lines(planner, source: str) -> list[tuple[str, object]]:
    """(line, parsed problem) for every non-blank line of `source` (a file, or - for stdin) not starting
    with #; a line that does not parse fails with its line number, before the model loads."""
    if source == "-":
        text = sys.stdin.read()
    else:
        from planners.base import read_text_file

        text = read_text_file(source, directory="give a file of problems, one a line")
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append((line.strip(), planner.parse(line)))
        except DreamAgentError as e:
            raise DreamAgentError(f"{source}:{n}: {e}") from None
    if not out:
        raise DreamAgentError(f"{source} holds no problems")
    return out


def solve_many_command(planner, source: str, *, model, device, alg, threads, threshold, entropy_bound, batch_size: int,
                       as_json: bool, **settings) -> None:
    """`solve --many`: every line's problem, batched; the answers in the file's order (one JSON line each
    with --json), a progress bar counting problems on stderr; exit 1 unless every one is solved."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from dream_agent.refine import rounds_for, solve_many

    lines = read_problem_lines(planner, source)
    settings["max_rounds"] = rounds_for(planner, settings["max_rounds"])
    engine = load_engine(planner, model, device, alg, threads, threshold, entropy_bound)
    with Progress(TextColumn(f"{planner.name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("solved {task.fields[solved]}"), console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("solve", total=len(lines), solved=0)
        solved = 0

        def advance(i, result):
            nonlocal solved
            solved += result.valid
            progress.update(task, advance=1, solved=solved)

        results = solve_many(engine, planner, [parsed for _, parsed in lines], batch_size=batch_size,
                             on_result=advance, **settings)
    for (line, parsed), result in zip(lines, results):
        if as_json:
            typer.echo(json.dumps({"problem": line, **result.to_dict()}))
        else:
            typer.echo(planner.render(parsed, result.solution))
            typer.echo(f"{'solved' if result.valid else 'not solved'}: {stats_line(result)}\n")
    unsolved = sum(not r.valid for r in results)
    if unsolved:
        typer.echo(f"dream-agent: {unsolved} of {len(results)} problems not solved", err=True)
        raise typer.Exit(1)
