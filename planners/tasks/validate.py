"""The validator: unified-planning's sequential simulator runs the plan and says what broke.

    check(task, rules, solution_text, max_steps) -> [Violation, ...]   (empty: a valid plan)

Reported, each on the slots at fault: a step that is no action of the domain (or names objects
the problem lacks); a step after the plan's no-op end; the first step whose precondition fails
and the fact that is missing; goals unmet at the end; broken user rules (last step, forbidden
actions, orderings). Refinement re-masks from the first step at fault (`TasksPlanner.related_slots`).
"""

from __future__ import annotations

from dream_agent.validation import Violation

from .domain import Step, Task
from .encoding import parse_solution, step_slots
from .oracle import to_up
from .rules import Rules
from .vocab import NOOP


def _fact_text(node) -> str:
    negated = node.is_not()
    if negated:
        node = node.arg(0)
    if node.is_fluent_exp():
        text = "(" + " ".join([node.fluent().name, *(str(a.object().name) for a in node.args)]) + ")"
    else:
        text = str(node)
    return f"(not {text})" if negated else text


class Simulator:
    """unified-planning's simulator for one task, built once and kept on the task."""

    def __init__(self, task: Task):
        from unified_planning.engines.sequential_simulator import UPSequentialSimulator

        self.task = task
        self.problem = to_up(task)
        self.sim = UPSequentialSimulator(self.problem)
        self.actions = {a.name: a for a in self.problem.actions}
        self.objects = {o.name: o for o in self.problem.all_objects}
        self.name = (lambda tok: task.original.get(tok, tok)) if task.up_problem is not None else (lambda tok: tok)

    @classmethod
    def of(cls, task: Task) -> Simulator:
        sim = task.__dict__.get("_simulator")
        if sim is None:
            sim = task.__dict__["_simulator"] = cls(task)
        return sim

    def run(self, plan: list[Step]):
        """(index of the first inapplicable step or None, its unmet conditions, unmet goals at the end)."""
        state = self.sim.get_initial_state()
        for i, step in enumerate(plan):
            params = [self.objects[self.name(a)] for a in step[1:]]
            action = self.actions[step[0]]
            unmet, _ = self.sim.get_unsatisfied_conditions(state, action, params)
            if unmet:
                return i, [_fact_text(c) for c in unmet], []
            state = self.sim.apply(state, action, params)
        return None, [], [_fact_text(g) for g in self.sim.get_unsatisfied_goals(state)]


def read_plan(task: Task, words_per_step: list[list[str]], arity: int):
    """(plan steps before the no-op end, [Violation] for malformed steps or steps after the end)."""
    violations, plan, ended = [], [], None
    types = dict(task.objects)
    for k, words in enumerate(words_per_step, start=1):
        slots = step_slots(k, arity)
        if not words or "?" in words:
            violations.append(Violation(f"step {k} is incomplete ({' '.join(words) or 'empty'})", slots))
            continue
        if words[0] == NOOP:
            if len(words) > 1:
                violations.append(Violation(f"step {k}: a no-op takes no arguments", slots))
            ended = ended or k
            continue
        schema = task.domain.schemas.get(words[0])
        step = tuple(words)
        if schema is None:
            violations.append(Violation(f"step {k}: {words[0]!r} is not an action of the domain", slots))
        elif len(step) - 1 != len(schema.params):
            violations.append(Violation(f"step {k}: {words[0]} takes {len(schema.params)} argument(s), not {len(step) - 1}", slots))
        elif any(a not in types for a in step[1:]):
            bad = next(a for a in step[1:] if a not in types)
            violations.append(Violation(f"step {k}: {bad} is not an object of this problem", slots))
        elif any(not task.domain.subtype(types[a], t) for a, (_, t) in zip(step[1:], schema.params)):
            violations.append(Violation(f"step {k}: {task.show_step(step)} has an argument of the wrong type", slots))
        elif ended:
            violations.append(Violation(f"step {k} ({task.show_step(step)}) comes after the plan ended with a no-op at step {ended}", slots))
        else:
            plan.append(step)
    return plan, violations


def check(task: Task, rules: Rules, solution: str, max_steps: int) -> list[Violation]:
    arity = task.domain.max_arity
    words = parse_solution(solution)
    words += [[NOOP]] * (max_steps - len(words))  # a plan written out shorter than the slots ends in no-ops
    plan, violations = read_plan(task, words[:max_steps], arity)
    if len(words) > max_steps:
        violations.append(Violation(f"the plan has more than {max_steps} steps"))
    if violations:
        return violations
    failed, unmet, goals = Simulator.of(task).run(plan)
    if failed is not None:
        step = plan[failed]
        return [Violation(f"step {failed + 1} {task.show_step(step)}: precondition {unmet[0]} does not hold",
                          step_slots(failed + 1, arity))]
    end = len(plan)
    tail = tuple(s for k in range(max(end, 1), max_steps + 1) for s in step_slots(k, arity))
    out = [Violation(f"goal {g} is not met at the end of the plan (step {end})", tail) for g in goals]
    # The user's rules.
    if rules.last is not None and (not plan or plan[-1] != rules.last):
        out.append(Violation(f"the last step must be {task.show_step(rules.last)}", tail))
    for k, step in enumerate(plan, start=1):
        if step in rules.forbid:
            out.append(Violation(f"step {k} {task.show_step(step)} is forbidden", step_slots(k, arity)))
        for a, b in rules.before:
            if step == b and a not in plan[: k - 1]:
                out.append(Violation(f"step {k} {task.show_step(b)} must come after {task.show_step(a)}",
                                     step_slots(k, arity)))
    for k, step in rules.anchors.items():
        if k > len(plan) or plan[k - 1] != step:
            out.append(Violation(f"step {k} must be {task.show_step(step)}", step_slots(k, arity)))
    return out
