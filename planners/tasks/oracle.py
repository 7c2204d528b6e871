"""The oracle: Fast Downward through unified-planning (`up-fast-downward`), for training targets
and for `eval`'s plan-length comparison. Never called while solving.

    plan = optimal_plan(task)        # [("unstack", "o1", "o2"), ...] or None (unsolvable / timed out)

`fast-downward-opt` returns shortest plans (A* with an admissible heuristic).
"""

from __future__ import annotations

from .domain import Step, Task, _quiet_up


def to_up(task: Task):
    """The task as a unified-planning Problem over the domain's own fluents and actions."""
    _quiet_up()
    from unified_planning.model import Object, Problem

    if task.up_problem is not None:
        return task.up_problem
    dom = task.domain.up_domain
    problem = Problem(f"{task.domain.name}-generated")
    for f in dom.fluents:
        problem.add_fluent(f, default_initial_value=False)
    for a in dom.actions:
        problem.add_action(a)
    types = {t.name: t for t in dom.user_types}
    env = dom.environment
    objs = {}
    for tok, typ in task.objects:
        utype = types[typ] if typ in types else env.type_manager.UserType("object")
        objs[tok] = Object(tok, utype, env)
        problem.add_object(objs[tok])
    fluents = {f.name: f for f in dom.fluents}
    for fact in task.init:
        problem.set_initial_value(fluents[fact[0]](*(objs[a] for a in fact[1:])), True)
    em = env.expression_manager
    for positive, fact in task.goal:
        exp = fluents[fact[0]](*(objs[a] for a in fact[1:]))
        problem.add_goal(exp if positive else em.Not(exp))
    return problem


def up_objects_by_name(up_problem) -> dict[str, str]:
    return {o.name: o.name for o in up_problem.all_objects}


def optimal_plan(task: Task, *, timeout: float = 60.0, planner: str = "fast-downward-opt") -> list[Step] | None:
    """A shortest plan in canonical names, or None when the planner finds none in time."""
    _quiet_up()
    from unified_planning.engines import PlanGenerationResultStatus as Status
    from unified_planning.shortcuts import OneshotPlanner

    problem = to_up(task)
    with OneshotPlanner(name=planner) as engine:
        result = engine.solve(problem, timeout=timeout)
    if result.status not in (Status.SOLVED_OPTIMALLY, Status.SOLVED_SATISFICING) or result.plan is None:
        return None
    to_canon = {v: k for k, v in task.original.items()} if task.up_problem is not None else {}
    steps = []
    for ai in result.plan.actions:
        args = [str(p.object().name) for p in ai.actual_parameters]
        steps.append((ai.action.name, *(to_canon.get(a, a) for a in args)))
    return steps
