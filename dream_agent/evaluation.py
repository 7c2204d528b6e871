"""Evaluation: solve a set of problems and summarise how the model and the full system did.

    report = evaluate(engine, planner, [ex.problem for ex in planner.load_dataset(path)])
    report.metrics.solve_rate, report.metrics.model_only_rate, report.metrics.p95_seconds
    curve = steps_curve(engine, planner, problems, [4, 8, 16])   # list[EvalMetrics]
    plot_curve(curve, "curve.png", title="sudoku")

`solve_rate` is the full system (constraint hooks and refinement); `model_only_rate` is the
first, unconstrained pass of the model alone. Both always come together (issue 4's rule).
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .engine import DiffusionEngine
from .errors import quoted
from .refine import SolveResult, rounds_for, solve_many

ProgressCallback = Callable[[int, SolveResult], None]  # (index of the problem, its result), as each finishes
DEFAULT_BATCH = 32  # problems a forward pass; BENCHMARKS.md "Batched solving" measures 1, 8 and 32


@dataclass(frozen=True)
class EvalMetrics:
    problems: int
    solved: int
    model_only: int  # problems whose first, unconstrained pass was already valid
    solve_rate: float  # solved / problems, 0..1
    model_only_rate: float
    mean_nfe: float
    mean_rounds: float
    median_seconds: float
    p95_seconds: float
    steps: int | None = None  # forward passes a round; None = one per masked position
    max_rounds: int = 10
    constraints: bool = True
    batch_size: int = 1
    wall_seconds: float = 0.0  # the whole run
    problems_per_second: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("solve_rate", "model_only_rate", "mean_nfe", "mean_rounds"):
            out[k] = round(out[k], 4)
        out["problems_per_second"] = round(out["problems_per_second"], 3)
        for k in ("median_seconds", "p95_seconds", "wall_seconds"):
            out[k] = round(out[k], 5)
        return out


@dataclass
class EvalReport:
    metrics: EvalMetrics
    results: list[SolveResult] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default."""
    if not values:
        return 0.0
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(results: Sequence[SolveResult], *, steps: int | None = None, max_rounds: int = 10,
              constraints: bool = True, batch_size: int = 1, wall_seconds: float | None = None) -> EvalMetrics:
    n = len(results)
    solved = sum(r.valid for r in results)
    model_only = sum(r.model_only_valid for r in results)
    seconds = [r.seconds for r in results]
    wall = sum(seconds) if wall_seconds is None else wall_seconds  # one at a time unless told
    return EvalMetrics(
        problems=n,
        solved=solved,
        model_only=model_only,
        solve_rate=solved / n if n else 0.0,
        model_only_rate=model_only / n if n else 0.0,
        mean_nfe=statistics.fmean(r.nfe for r in results) if n else 0.0,
        mean_rounds=statistics.fmean(r.rounds for r in results) if n else 0.0,
        median_seconds=statistics.median(seconds) if n else 0.0,
        p95_seconds=percentile(seconds, 95),
        steps=steps,
        max_rounds=max_rounds,
        constraints=constraints,
        batch_size=batch_size,
        wall_seconds=wall,
        problems_per_second=n / wall if wall > 0 else 0.0,
    )


def evaluate(
    engine: DiffusionEngine,
    planner,
    problems: Sequence[Any],
    *,
    steps: int | None = None,
    max_rounds: int | None = None,
    constraints: bool = True,
    search: bool = True,
    samples: int = 1,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH,
    on_result: ProgressCallback | None = None,
) -> EvalReport:
    """Solve every problem and summarise; problem i with seed + i.

    batch_size: problems whose searches share each forward pass (`refine.solve_many`); a problem's
    result is the same at any batch size, its `seconds` (so median and p95) are its latency in the
    batch, and `problems_per_second` is the throughput of the whole run. 1: one at a time."""
    if not problems:
        raise ValueError("there are no problems to evaluate")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    max_rounds = rounds_for(planner, max_rounds)  # recorded in the metrics as a number
    start = time.perf_counter()
    results = solve_many(engine, planner, problems, batch_size=batch_size, seed=seed, on_result=on_result,
                         steps=steps, max_rounds=max_rounds, constraints=constraints, search=search, samples=samples)
    wall = time.perf_counter() - start
    metrics = summarize(results, steps=steps, max_rounds=max_rounds, constraints=constraints,
                        batch_size=batch_size, wall_seconds=wall)
    return EvalReport(metrics, results)


def steps_curve(engine: DiffusionEngine, planner, problems: Sequence[Any], step_counts: Sequence[int],
                **kwargs: Any) -> list[EvalMetrics]:
    """`evaluate` at each step count: the quality-speed curve that `plot_curve` draws."""
    return [evaluate(engine, planner, problems, steps=s, **kwargs).metrics for s in step_counts]


def masked_count(planner, problem: Any, tokenizer) -> int:
    return int(planner.encode(problem, tokenizer).masked.sum())


def default_plot_steps(planner, problems: Sequence[Any], tokenizer) -> list[int]:
    """Step counts from 1/16 of the median number of masks up to all of them (one per mask)."""
    masks = int(statistics.median(masked_count(planner, p, tokenizer) for p in problems))
    masks = max(masks, 1)
    return sorted({max(1, round(masks * f)) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)})


def parse_steps_list(text: str) -> list[int]:
    """"4,8,16" -> [4, 8, 16]; a ValueError that says what is wrong otherwise."""
    pieces = [v for v in text.replace(" ", "").split(",") if v] if isinstance(text, str) else None
    # at most 9 digits a count: int() of 4,300 digits or more raises a ValueError of its own
    if pieces is None or not all(re.fullmatch(r"-?[0-9]{1,9}", v) for v in pieces):
        raise ValueError(f"step counts are whole numbers separated by commas, such as 4,8,16; got {quoted(text)}")
    values = [int(v) for v in pieces]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"step counts must be at least 1, got {quoted(text)}")
    return sorted(set(values))


def plot_curve(curve: Sequence[EvalMetrics], path: str, *, title: str = "") -> None:
    """Solve rate (full system and model alone) against denoising steps, saved as an image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    fig = Figure(figsize=(5, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    steps = [m.steps for m in curve]
    ax.plot(steps, [100 * m.solve_rate for m in curve], "o-", label="full system")
    ax.plot(steps, [100 * m.model_only_rate for m in curve], "s--", label="model only (first pass)")
    if len(steps) > 1 and max(steps) / max(min(steps), 1) >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel("denoising steps per round")
    ax.set_ylabel("solved (%)")
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    n = curve[0].problems if curve else 0
    ax.set_title(f"{title}: solve rate vs steps ({n} problems)" if title else f"solve rate vs steps ({n} problems)")
    fig.tight_layout()
    fig.savefig(path)
