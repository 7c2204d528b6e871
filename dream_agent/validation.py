"""What a validator says about a filled answer: the `Validator` protocol and `Violation`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Violation:
    """One broken rule: the slots at fault and a message a person reads.

    `slots` names template slots (the refinement loop re-masks their positions);
    `positions` may name raw template positions where a rule is not about whole slots.
    """

    message: str
    slots: tuple[str, ...] = ()
    positions: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message, "slots": list(self.slots)}


@runtime_checkable
class Validator(Protocol):
    def check(self, problem: Any, solution: str) -> list[Violation]:
        """Every violation of `solution` for `problem`; an empty list means valid."""
        ...
