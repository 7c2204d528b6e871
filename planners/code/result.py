"""The code planner's solve result: the refinement loop's, with the filled program under "code"."""

from __future__ import annotations

from dataclasses import dataclass

from dream_agent.refine import SolveResult


@dataclass
class CodeSolveResult(SolveResult):
    def to_dict(self) -> dict:
        return {"code": self.solution, **super().to_dict()}  # `solve code --json` names the program "code"
