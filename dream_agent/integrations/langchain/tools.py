"""Planner tools: every registered planner as a LangChain `StructuredTool` (`solve_sudoku`, `solve_countdown`, ...).

    tools = planner_tools()                                  # each planner's bundled model, loaded on first call
    tools = planner_tools(engines={"sudoku": my_engine})     # or engines of your own
    solve_sudoku = planner_tool("sudoku")
    solve_sudoku.invoke({"problem": "1000\\n0002\\n4003\\n0000"})   # -> SolveResult.to_dict()

A tool takes the problem as text (what `dream-agent solve NAME` reads), which any agent can write,
and returns `dream_agent.refine.solve(...).to_dict()`: solution, valid, violations, stats. A problem the
planner cannot parse comes back as the planner's one-line message, so the agent can correct itself.
"""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from pydantic import Field, create_model

from dream_agent.engine import DiffusionEngine
from dream_agent.errors import ProblemError
from dream_agent.model import load_model


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def planner_tool(name: str, *, engine: DiffusionEngine | None = None, model: str | None = None,
                 device: str = "auto", **solve_kwargs: Any) -> StructuredTool:
    """The planner registered as `name`, as a tool. Its model: `engine`, else `model` (a path, hub id or
    bundled name), else the planner's bundled model; loaded on the tool's first call, not here.
    `solve_kwargs` (steps, max_rounds, constraints, samples, seed) go to `refine.solve`."""
    from dream_agent.refine import solve  # the refinement loop imports the sampler stack; only tools need it
    from planners import get_planner

    planner = get_planner(name)
    tool_name = getattr(planner, "tool_name", "") or f"solve_{name}"
    help_text = (getattr(planner, "input_help", "")
                 or f"The {name} problem as text, in the form `dream-agent solve {name}` reads.")
    args_schema = create_model(f"{_camel(tool_name)}Input", problem=(str, Field(description=help_text)))
    state: dict[str, DiffusionEngine | None] = {"engine": engine}
    lock = threading.Lock()

    def get_engine() -> DiffusionEngine:
        with lock:
            if state["engine"] is None:
                state["engine"] = DiffusionEngine(load_model(model or name, device=device, threads="auto"))
            return state["engine"]

    def run(problem: str) -> dict[str, Any]:
        try:
            parsed = planner.parse(problem)
        except ProblemError as e:
            raise ToolException(str(e)) from None  # handed back to the agent as the tool's answer
        return solve(get_engine(), planner, parsed, **solve_kwargs).to_dict()

    description = (f"{planner.description}. Solves with a masked diffusion model, checks the answer and refines it. "
                   "Returns JSON: solution, valid, violations, stats.")
    return StructuredTool.from_function(func=run, name=tool_name, description=description,
                                        args_schema=args_schema, handle_tool_error=True)


def planner_tools(names: list[str] | None = None, *, engines: dict[str, DiffusionEngine] | None = None,
                  **kwargs: Any) -> list[StructuredTool]:
    """A tool for each registered planner (or for `names`); `engines` maps planner names to engines."""
    from planners import available_planners

    engines = engines or {}
    return [planner_tool(n, engine=engines.get(n), **kwargs) for n in (names or available_planners())]
