"""`dream-agent eval PLANNER --data FILE --check-references`: the validators against the data's own answers."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dream_agent.errors import DreamAgentError


def references_command(planner, data: str, examples: list, as_json: bool) -> int:
    """Exit status 0 when every reference passes and no null answer does, else 1."""
    from dream_agent.references import check_references

    if not examples:
        raise DreamAgentError(f"{data} holds no problems")
    if not any(ex.solution is not None for ex in examples):
        raise DreamAgentError(f"{data} has no reference solutions to check")
    with Progress(TextColumn("references"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("refs", total=len(examples))
        report = check_references(planner, examples, workers=2,
                                  on_row=lambda i, ok: progress.update(task, advance=1))
    out = {"planner": planner.name, "data": data, **report.to_dict()}
    box = getattr(planner, "_sandbox", None)
    if box is not None:
        out["isolation"] = box.isolation.to_dict()
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(f"{planner.name} · {data}: {report.passed}/{report.rows} references pass "
                   f"({report.rows / max(report.seconds, 1e-9):.1f} rows/s)")
        if report.null_checked:
            typer.echo(f"null answers passing: {len(report.null_passes)} of {report.null_checked}"
                       + (f" (rows {', '.join(map(str, report.null_passes[:20]))})" if report.null_passes else ""))
        for i, message in report.failed[:10]:
            typer.echo(f"  row {i}: {message}")
    return 0 if not report.failed and not report.null_passes else 1
