"""What a user pins or rules out in a plan: anchors, forbidden actions, orderings.

    rules = Rules.parse(task, anchors=["3:(pick-up b)", "last:(stack a b)"], forbid=["(unstack c a)"],
                        before=[("(pick-up a)", "(pick-up b)")])

Numbered anchors become fixed template tokens (the model fills around them); `last`, forbid and
before are kept by the constraint hooks and checked by the validator. Unknown actions or objects,
and anchors that contradict each other, are one-line errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dream_agent.errors import ProblemError

from .domain import Step, Task


@dataclass(frozen=True)
class Rules:
    anchors: dict[int, Step] = field(default_factory=dict)  # 1-based step -> the action it must be
    last: Step | None = None  # the plan's final action
    forbid: frozenset = frozenset()  # actions that never appear
    before: tuple[tuple[Step, Step], ...] = ()  # (a, b): b appears only after a has

    @classmethod
    def parse(cls, task: Task, *, anchors=(), forbid=(), before=(), max_steps: int | None = None) -> Rules:
        fixed: dict[int, Step] = {}
        last = None
        for text in anchors:
            where, sep, action = str(text).partition(":")
            if not sep:
                raise ProblemError(f"anchor {text!r} needs the form STEP:(action args), e.g. 3:(pick-up b) or last:(stack a b)")
            step = task.canonical_step(action)
            where = where.strip().lower()
            if where == "last":
                if last is not None and last != step:
                    raise ProblemError(f"contradictory anchors: the last step cannot be both "
                                       f"{task.show_step(last)} and {task.show_step(step)}")
                last = step
                continue
            try:
                k = int(where)
            except ValueError:
                raise ProblemError(f"anchor {text!r}: the step must be a number from 1 or 'last'") from None
            if k < 1 or (max_steps is not None and k > max_steps):
                raise ProblemError(f"anchor {text!r}: step {k} is outside the plan's 1..{max_steps} steps")
            if k in fixed and fixed[k] != step:
                raise ProblemError(f"contradictory anchors: step {k} cannot be both {task.show_step(fixed[k])} "
                                   f"and {task.show_step(step)}")
            fixed[k] = step
        banned = frozenset(task.canonical_step(t) for t in forbid)
        for k, step in sorted(fixed.items()):
            if step in banned:
                raise ProblemError(f"contradictory rules: step {k} is anchored to {task.show_step(step)}, which is forbidden")
        if last is not None and last in banned:
            raise ProblemError(f"contradictory rules: the last step {task.show_step(last)} is forbidden")
        order = tuple((task.canonical_step(a), task.canonical_step(b)) for a, b in before)
        for a, b in order:
            if a == b:
                raise ProblemError(f"contradictory ordering: {task.show_step(a)} cannot come before itself")
            ka = [k for k, s in fixed.items() if s == a]
            kb = [k for k, s in fixed.items() if s == b]
            if ka and kb and min(kb) <= min(ka):
                raise ProblemError(f"contradictory rules: {task.show_step(b)} is anchored at step {min(kb)}, "
                                   f"before {task.show_step(a)} at step {min(ka)}")
        return cls(fixed, last, banned, order)

    def __bool__(self) -> bool:
        return bool(self.anchors or self.last or self.forbid or self.before)

    def allows(self, step: Step, done: list[Step]) -> bool:
        """May `step` come after the steps `done` (forbid and before)?"""
        if step in self.forbid:
            return False
        return all(a in done for a, b in self.before if b == step)
