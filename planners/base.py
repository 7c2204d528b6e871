"""The `Planner` base class: the one door between a kind of problem and the diffusion model.

| a planner must provide                          | what it does                                         |
|-------------------------------------------------|------------------------------------------------------|
| `name`                                          | registry name (`dream-agent solve NAME`)             |
| `alphabet`                                      | characters of the small model's tokenizer            |
| `parse(text) -> problem`                        | a problem from user text; `ProblemError` if bad      |
| `encode(problem, tokenizer, solution=None)`     | the masked `Template`; with `solution`, every slot   |
|                                                 | already holds the answer (a training target)         |
| `decode(problem, template, ids) -> str`         | the solution text from filled token ids              |
| `check(problem, solution) -> list[Violation]`   | the validator (also reachable as `planner.validator`)|
| `examples(n, rng) -> list[Example]`             | generated training pairs (never evaluation data)     |

| a planner may provide                           | default                                              |
|-------------------------------------------------|------------------------------------------------------|
| `constraints(problem, template, tokenizer)`     | None: a `tokens_hook`/`logits_hook` pair that        |
|                                                 | tightens allowed tokens while denoising              |
| `related_slots(problem, template, violation)`   | the violation's own slots: what to re-mask with it   |
| `render(problem, solution) -> str`              | the solution text                                    |
| `load_dataset(path) -> list[Example]`           | none: evaluation files the `eval` command reads      |
| `problem_text(problem) -> str`                  | `str(problem)`                                       |
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dream_agent.errors import ProblemError
from dream_agent.template import Template
from dream_agent.validation import Violation


@dataclass(frozen=True)
class Example:
    """A problem and one correct solution; `solution` may be None in evaluation sets without answers."""

    problem: Any
    solution: str | None = None


@dataclass
class Constraints:
    """Hooks for `denoise` (Dream's hook signatures) that keep a fill consistent while it forms."""

    logits_hook: Callable | None = None
    tokens_hook: Callable | None = None
    # dead_end(x) (B, N) -> (B,) bool: this partial fill can no longer be completed validly
    # (lets `dream_agent.search.backtrack` retreat before the fill is finished)
    dead_end: Callable | None = None


class Planner(ABC):
    name: str = ""
    alphabet: str = ""
    description: str = ""
    max_rounds: int = 10  # default budget of `refine.solve`: denoising rounds, the model-only one included

    @abstractmethod
    def parse(self, text: str) -> Any: ...

    @abstractmethod
    def encode(self, problem: Any, tokenizer, solution: str | None = None) -> Template: ...

    @abstractmethod
    def decode(self, problem: Any, template: Template, ids) -> str: ...

    @abstractmethod
    def check(self, problem: Any, solution: str) -> list[Violation]: ...

    @abstractmethod
    def examples(self, n: int, rng: random.Random) -> list[Example]: ...

    @property
    def validator(self) -> "Planner":
        return self  # a planner satisfies the Validator protocol through `check`

    def constraints(self, problem: Any, template: Template, tokenizer) -> Constraints | None:
        return None

    def related_slots(self, problem: Any, template: Template, violation: Violation) -> list[str]:
        return list(violation.slots)

    def render(self, problem: Any, solution: str) -> str:
        return solution

    def problem_text(self, problem: Any) -> str:
        return str(problem)

    def load_dataset(self, path: str) -> list[Example]:
        raise NotImplementedError(f"the {self.name} planner reads no evaluation files")


def dream_row(text: str) -> dict:
    """One row of Dream's planning jsonl sets (`{"input": ..., "output": ...}`), checked."""
    try:
        row = json.loads(require_text(text, "a jsonl row"))
    except json.JSONDecodeError as e:
        raise ProblemError(f"not valid JSON ({e.msg})") from None
    except ValueError as e:  # an integer of more than 4,300 digits (Python's own limit)
        raise ProblemError(f"not valid JSON here ({str(e).split(':')[0]})") from None
    except RecursionError:
        raise ProblemError("not valid JSON here: nested too deeply") from None
    if not isinstance(row, dict) or not isinstance(row.get("input"), str):
        raise ProblemError('expected a JSON object with an "input" string, as in Dream\'s jsonl sets')
    return row


def require_text(text: object, what: str) -> str:
    """`text` itself when it is a string; a `ProblemError` naming what was given otherwise."""
    if not isinstance(text, str):
        raise ProblemError(f"{what} is text, not {type(text).__name__}")
    return text


def read_text_file(path: str, directory: str = "not a data file") -> str:
    """A file's text (an evaluation file, a problem); a `ProblemError` that says why it cannot be read
    otherwise. `directory` finishes the message for a directory given in its place."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ProblemError(f"{path} is a directory, {directory}")
    if not p.is_file():
        raise ProblemError(f"no such file: {path}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ProblemError(f"{path} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ProblemError(f"cannot read {path}: {e.strerror or e}") from None
