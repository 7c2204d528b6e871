"""HumanEval's infilling sets (openai/human-eval-infilling, MIT) read as they are, gzip included.

Each row has `prompt` (the code before the hole), `suffix` (after it), `canonical_solution`
(the hole's reference text), `test` (a `check(candidate)` function) and `entry_point`. A row
becomes a skeleton `prompt [MASK] suffix` with one test, `check(entry_point)`; its reference
solution is the whole program.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dream_agent.errors import ProblemError

from ..base import Example
from .skeleton import CodeProblem, Hole, parse_tests

FIELDS = ("prompt", "suffix", "canonical_solution", "test", "entry_point")


def row_problem(row: dict) -> CodeProblem:
    pieces = tuple(p for p in (row["prompt"], Hole(0, None), row["suffix"]) if p != "")
    return CodeProblem(pieces, parse_tests(row["test"], row["entry_point"]), name=row.get("task_id", "row"))


def load_rows(path: str) -> list[Example]:
    p = Path(path)
    if not p.is_file():
        raise ProblemError(f"{path}: no such file")
    opener = gzip.open if p.suffix == ".gz" else open
    out = []
    try:
        with opener(p, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ProblemError(f"{path}:{i}: not valid JSON ({e.msg})") from None
                missing = [k for k in FIELDS if not isinstance(row.get(k), str)]
                if missing:
                    raise ProblemError(f"{path}:{i}: a HumanEval infilling row needs {', '.join(missing)}")
                problem = row_problem(row)
                out.append(Example(problem, row["prompt"] + row["canonical_solution"] + row["suffix"]))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise ProblemError(f"{path}: cannot read it ({e})") from None
    return out
