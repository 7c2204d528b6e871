"""`dream-agent eval tasks`'s numbers: our plans beside Fast Downward's optimal ones.

    rows = evaluate_tasks(engine, planner, problems, names, oracle=True)
    summary(rows)   # valid rates (model alone, full system), median length ratio, median seconds

The oracle runs here, for the comparison only, never inside `solve`.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from dream_agent.refine import solve

from .oracle import optimal_plan


@dataclass
class TaskRow:
    name: str
    valid: bool
    model_only_valid: bool
    length: int | None  # our plan's steps (valid plans only)
    optimal: int | None  # Fast Downward's shortest plan
    seconds: float
    nfe: int


def evaluate_tasks(engine, planner, problems, names, *, oracle: bool = True, on_row=None, **solve_kwargs) -> list[TaskRow]:
    rows = []
    for name, problem in zip(names, problems):
        optimal = None
        if oracle:
            plan = optimal_plan(problem.task, timeout=60)
            optimal = None if plan is None else len(plan)
        r = solve(engine, planner, problem, **solve_kwargs)
        length = len(planner.plan(problem, r.solution)) if r.valid else None
        row = TaskRow(name, r.valid, r.model_only_valid, length, optimal, r.seconds, r.nfe)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


def summary(rows: list[TaskRow]) -> dict:
    n = len(rows) or 1
    ratios = [r.length / r.optimal for r in rows if r.valid and r.optimal]
    return {
        "problems": len(rows),
        "valid_rate": round(sum(r.valid for r in rows) / n, 4),
        "model_only_rate": round(sum(r.model_only_valid for r in rows) / n, 4),
        "median_length_ratio": round(statistics.median(ratios), 4) if ratios else None,
        "median_seconds": round(statistics.median(r.seconds for r in rows), 4) if rows else None,
        "mean_nfe": round(statistics.fmean(r.nfe for r in rows), 1) if rows else None,
    }


def row_dict(row: TaskRow) -> dict:
    out = asdict(row)
    out["seconds"] = round(out["seconds"], 4)
    return out
