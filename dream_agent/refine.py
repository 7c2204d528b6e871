"""Refinement: denoise -> validate -> re-mask the positions at fault -> denoise again.

    result = solve(engine, planner, problem)
    result.solution, result.valid, result.violations, result.rounds, result.nfe

Round 1 is the model alone: an unconstrained pass (only the template's own allowed sets),
whose validity is reported as `model_only_valid`. After it, with the planner's constraint
hooks (which tighten the allowed tokens while the fill forms), one of two repairs:

  - search (the default): model-guided backtracking (`dream_agent.search`): the fill is
    rebuilt under the constraints, and at a dead end re-masked back to the model's latest
    choice, which then takes its next-ranked token (later in the search, back to the untried
    choice the model finds most probable). Each complete fill validated is a round.
  - re-masking rounds (`search=False`, or no constraints): re-mask what the validator
    blames and the slots the planner relates to it, and denoise again. When the same
    failure comes back, more of the model's own fill is re-masked and tokens are sampled
    rather than taken by argmax, so a round never repeats the last one exactly.

The model always chooses the tokens; hooks and validators only prune.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .engine import DiffusionEngine
from .batching import Job, run_job, run_jobs
from .decoding import CONFIDENCE
from .search import backtrack_job
from .template import Template
from .validation import Violation

StepCallback = Callable[[int, int | None, torch.Tensor, Template], None]  # (round, step, x row, template)


@dataclass
class SolveResult:
    solution: str
    valid: bool
    violations: list[Violation]
    rounds: int
    nfe: int
    seconds: float
    model_only_valid: bool
    model_only_solution: str = ""
    problem: Any = None
    history: list[str] = field(default_factory=list)  # the solution after each round
    exhausted: bool = False  # the search tried every fill the constraints allow: no valid one fits the template

    def to_dict(self) -> dict[str, Any]:
        return {
            "solution": self.solution,
            "valid": self.valid,
            "violations": [v.to_dict() for v in self.violations],
            "stats": {"nfe": self.nfe, "rounds": self.rounds, "seconds": round(self.seconds, 4),
                      "model_only_valid": self.model_only_valid, "exhausted": self.exhausted},
        }


DEFAULT_ROUNDS = 10  # Planner.max_rounds's default, for planners that only follow the protocol


def rounds_for(planner, max_rounds: int | None) -> int:
    """The round budget: `max_rounds` if given, else the planner's own default."""
    return max_rounds if max_rounds is not None else getattr(planner, "max_rounds", DEFAULT_ROUNDS)


def _positions(template: Template, slots, extra=()) -> set[int]:
    out = {int(p) for p in extra}
    for name in slots:
        out.update(template.slots.get(name, ()))
    return {p for p in out if not bool(template.anchor_mask[p])}


def _compose(*hooks):
    hooks = [h for h in hooks if h is not None]
    if not hooks:
        return None

    def composed(step, x, logits):
        for h in hooks:
            x = h(step, x, logits)
        return x

    return composed


@dataclass
class _Searched:
    nfe: int
    solutions: list[str]  # every complete fill the validator saw, in order
    best: tuple[str, list[Violation], torch.Tensor] | None
    exhausted: bool


def _search(engine, planner, problem, base: Template, hooks, *, budget: int, on_step) -> Job[_Searched]:
    solutions: list[str] = []
    judged: dict[str, list[Violation]] = {}

    def accept(ids: torch.Tensor) -> list[Violation]:
        solution = planner.decode(problem, base, ids)
        solutions.append(solution)
        judged[solution] = planner.check(problem, solution)
        return judged[solution]

    alg = engine.settings.alg if engine.settings.alg in CONFIDENCE else "entropy"
    view = None if on_step is None else (lambda step, row: on_step(2, step, row, base))
    result = yield from backtrack_job(engine.model, base, accept=accept, logits_hook=hooks.logits_hook, dead_end=hooks.dead_end,
                       max_nfe=max(1, budget), alg=alg, on_step=view,
                       window=getattr(planner, "search_window", lambda template: None)(base))
    best = None
    if result.ids is not None:
        solution = planner.decode(problem, base, result.ids)
        best = (solution, judged[solution], result.ids)
    return _Searched(result.nfe, solutions, best, result.exhausted)


def solve(engine: DiffusionEngine, planner, problem: Any, **settings: Any) -> SolveResult:
    """Solve `problem` with `planner`'s template, the engine's model and the planner's validator.

    The keywords are `solve_job`'s; the job runs here alone. `solve_many` runs many together."""
    return run_job(engine.model, solve_job(engine, planner, problem, **settings))


def solve_many(engine: DiffusionEngine, planner, problems: Sequence[Any], *, batch_size: int = 32, seed: int = 0,
               on_result: Callable[[int, SolveResult], None] | None = None, **settings: Any) -> list[SolveResult]:
    """Solve every problem, their searches advancing together: each step's forward passes carry every
    running problem's rows (up to `batch_size`), and a finished problem's place is taken at once by
    the next. Problem i is solved with seed + i, as `solve(..., seed=seed + i)` would solve it alone,
    and gets the same result (rows are never padded: see `dream_agent.batching`). `seconds` is each
    problem's own wall time from its start to its end, batch-mates' work included.

    A planner with a `solve_job` of its own (code: holes tried at several lengths) is run through it."""
    job = getattr(planner, "solve_job", None)
    jobs = ((job(engine, problem, seed=seed + i, **settings) if job else
             solve_job(engine, planner, problem, seed=seed + i, **settings)) for i, problem in enumerate(problems))
    return run_jobs(engine.model, jobs, batch_size=batch_size, on_result=on_result)


def solve_job(
    engine: DiffusionEngine,
    planner,
    problem: Any,
    *,
    steps: int | None = None,
    max_rounds: int | None = None,
    constraints: bool = True,
    search: bool = True,
    samples: int = 1,
    seed: int = 0,
    on_step: StepCallback | None = None,
) -> Job[SolveResult]:
    """`solve` as a job (`dream_agent.batching`): it yields every forward pass its rounds and search need.

    steps: forward passes per round (default: one per masked position, the best quality); the
        engine's reveal rule (`threshold`, `entropy_bound`) may finish a round in fewer, in the
        model-only round and the re-masking rounds alike; the search reveals by its own rules;
    max_rounds: denoising rounds in all, the model-only one included (default: the planner's `max_rounds`);
    constraints: use the planner's constraint hooks from round 2 on;
    search: with constraints, rounds 2 on are one model-guided backtracking search
        (`dream_agent.search`) with the forward passes of max_rounds - 1 full rounds; each
        complete fill it validates counts as a round. Without it, each round re-masks what
        the validator blames and denoises again;
    samples: rows denoised in parallel each re-masking round (sampled, so they differ); the best is kept.
    """
    max_rounds = rounds_for(planner, max_rounds)
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    start = time.perf_counter()
    tokenizer = engine.tokenizer
    base = planner.encode(problem, tokenizer)
    hooks = planner.constraints(problem, base, tokenizer) if constraints else None
    rng = random.Random(seed)
    generator = torch.Generator(device=engine.model.device).manual_seed(seed)

    template, nfe, history = base, 0, []
    best: tuple[str, list[Violation], torch.Tensor] | None = None
    model_only_valid, model_only_solution = False, ""
    exhausted = False
    last_signature: frozenset | None = None
    stuck = 0
    for round_ in range(1, max_rounds + 1):
        n_masked = int(template.masked.sum())
        round_steps = max(1, min(steps or n_masked, n_masked))
        first = round_ == 1
        rows = 1 if first else samples
        sampling = not first and (stuck > 0 or rows > 1)
        viewer = None
        if on_step is not None:
            viewer = lambda step, x, logits, r=round_, t=template: (on_step(r, step, x[0], t), x)[1]  # noqa: E731
        use_hooks = hooks if (hooks is not None and not first) else None
        result = yield from engine.fill_job(
            [template] * rows,
            steps=round_steps,
            temperature=(engine.settings.temperature or 0.7) if sampling else engine.settings.temperature,
            logits_hook=use_hooks.logits_hook if use_hooks else None,
            tokens_hook=_compose(use_hooks.tokens_hook if use_hooks else None, viewer),
            generator=generator,
        )
        nfe += result.nfe
        round_best: tuple[str, list[Violation], torch.Tensor] | None = None
        for b in range(rows):
            ids = result.row_ids(b)
            solution = planner.decode(problem, base, ids)
            violations = planner.check(problem, solution)
            if round_best is None or len(violations) < len(round_best[1]):
                round_best = (solution, violations, ids)
            if not violations:
                break
        solution, violations, ids = round_best
        history.append(solution)
        if best is None or len(violations) < len(best[1]):
            best = round_best  # the answer returned: fewest violations over all rounds
        if first:
            model_only_solution, model_only_valid = solution, not violations
        if not violations:
            break
        if first and search and hooks is not None and max_rounds > 1:
            found = yield from _search(engine, planner, problem, base, hooks, budget=(max_rounds - 1) * n_masked,
                            on_step=on_step)
            nfe += found.nfe
            history.extend(found.solutions)
            if found.best is not None and len(found.best[1]) < len(best[1]):
                best = found.best
            exhausted = found.exhausted
            break

        # Re-mask what the validator blames, and what the planner says conflicts with it.
        # related_slots reads the fill's values (e.g. which peers hold a duplicated digit),
        # so it gets the filled template, not the all-masked base.
        filled_template = base.with_values(ids, remask=[])
        blamed: set[int] = set()
        for v in violations:
            blamed |= _positions(base, planner.related_slots(problem, filled_template, v), v.positions)
        signature = frozenset(blamed)
        stuck = stuck + 1 if signature == last_signature else 0
        last_signature = signature
        filled = [p for p in range(len(base)) if not bool(base.anchor_mask[p])]
        if first and hooks is not None:
            blamed = set(filled)  # the model-only fill's errors cascade: start over with constraints
        elif not blamed or stuck:
            # Nothing specific to blame, or the same failure again: widen, re-masking a growing
            # random share of the model's own fill besides the blamed positions.
            share = min(1.0, 0.25 * (stuck + 1)) if blamed else 1.0
            blamed |= set(rng.sample(filled, max(1, int(share * len(filled)))))
        template = base.with_values(ids, remask=sorted(blamed))

    solution, violations, _ = best
    return SolveResult(
        solution=solution, valid=not violations, violations=violations, rounds=len(history), nfe=nfe,
        seconds=time.perf_counter() - start, model_only_valid=model_only_valid,
        model_only_solution=model_only_solution, problem=problem, history=history, exhausted=exhausted,
    )
