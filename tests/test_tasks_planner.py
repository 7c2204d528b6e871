"""The tasks planner: PDDL reading, encoding, the validator (against unified-planning's PlanValidator),
hooks, user rules and the dependency graph. Plans come from Fast Downward (the oracle)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
import torch

from dream_agent.errors import ProblemError
from planners.tasks.domain import Domain
from planners.tasks.encoding import step_slots
from planners.tasks.generators import blocksworld, from_problem, gripper
from planners.tasks.graph import dependency_graph, graph_json, layers, to_dot
from planners.tasks.oracle import optimal_plan, to_up
from planners.tasks.planner import TaskProblem, TasksPlanner
from planners.tasks.rules import Rules

PDDL = Path(__file__).resolve().parents[2] / "shared" / "data" / "pddl"
if not PDDL.is_dir():
    PDDL = Path("/work/shared/data/pddl")
BLOCKS, GRIPPER = PDDL / "blocks", PDDL / "gripper"


@pytest.fixture(scope="module")
def blocks():
    return TasksPlanner.for_domain(BLOCKS / "domain.pddl", max_steps=20, max_objects={"o": 8})


@pytest.fixture(scope="module")
def grip():
    return TasksPlanner.for_domain(GRIPPER / "domain.pddl", max_steps=16, max_objects={"o": 8})


def plan_text(steps) -> str:
    return "\n".join(" ".join(s) for s in steps)


def up_valid(task, steps) -> bool:
    """unified-planning's own PlanValidator: the outside reference."""
    from unified_planning.plans import ActionInstance, SequentialPlan
    from unified_planning.shortcuts import PlanValidator

    problem = to_up(task)
    actions = {a.name: a for a in problem.actions}
    objects = {o.name: o for o in problem.all_objects}
    name = (lambda t: task.original.get(t, t)) if task.up_problem is not None else (lambda t: t)
    plan = SequentialPlan([ActionInstance(actions[s[0]], [objects[name(a)] for a in s[1:]]) for s in steps])
    with PlanValidator(problem_kind=problem.kind) as validator:
        return bool(validator.validate(problem, plan))


# ---- reading -------------------------------------------------------------------------------


def test_ipc_blocks_read_with_canonical_names(blocks):
    p = blocks.problem(BLOCKS / "probBLOCKS-4-0.pddl")
    assert [o for o, _ in p.task.objects] == ["o1", "o2", "o3", "o4"]
    assert set(p.task.original.values()) == {"a", "b", "c", "d"}
    assert ("handempty",) in p.task.init and len(p.task.actions) == 4 * 2 + 4 * 4 * 2  # stack and unstack: any ordered pair (no equality)


def test_unsupported_requirement_is_named():
    durative = """(define (domain d) (:requirements :durative-actions)
      (:predicates (p)) (:durative-action a :parameters () :duration (= ?duration 1)
      :condition (at start (p)) :effect (at end (not (p)))))"""
    with pytest.raises(ProblemError, match="durative-actions"):
        Domain(durative)
    numeric = """(define (domain n) (:requirements :numeric-fluents) (:functions (f))
      (:action a :parameters () :precondition (> (f) 0) :effect (decrease (f) 1)))"""
    with pytest.raises(ProblemError, match="numeric-fluents"):
        Domain(numeric)


def test_malformed_pddl_and_another_domains_problem(blocks):
    with pytest.raises(ProblemError, match="malformed PDDL"):
        Domain("(define (domain x) (:predicates (p ?a)) (:action a :parameters (?x) :effect (q ?x)))")
    with pytest.raises(ProblemError, match="for domain 'gripper-strips'"):
        blocks.problem(GRIPPER / "prob01.pddl")


def test_objects_beyond_the_model_limit_are_refused():
    small = TasksPlanner.for_domain(BLOCKS / "domain.pddl", max_objects={"o": 4})
    with pytest.raises(ProblemError, match="more than the model's limit of 4"):
        small.problem(BLOCKS / "probBLOCKS-5-0.pddl")


def test_typed_negative_preconditions_and_equality():
    domain = Domain("""(define (domain lights) (:requirements :strips :typing :negative-preconditions :equality)
      (:types lamp) (:predicates (on ?l - lamp) (linked ?a ?b - lamp))
      (:action switch :parameters (?a ?b - lamp) :precondition (and (not (on ?a)) (linked ?a ?b) (not (= ?a ?b)))
       :effect (and (on ?a) (on ?b))))""")
    task = domain.read_problem("""(define (problem p) (:domain lights) (:objects x y z - lamp)
      (:init (linked x y) (linked z z)) (:goal (and (on y))))""")
    assert [o for o, _ in task.objects] == ["lamp1", "lamp2", "lamp3"]
    assert [g.step for g in task.actions] == [("switch", "lamp1", "lamp2")]  # (= ?a ?b) and statics pruned
    assert optimal_plan(task) == [("switch", "lamp1", "lamp2")]


# ---- tokenizer and template ------------------------------------------------------------------


def test_word_tokenizer_saves_and_loads(blocks, tmp_path):
    from transformers import AutoTokenizer

    tok = blocks.tokenizer()
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    words = "init @on o1 o2 goal plan @stack o1 o2 noop _"
    assert again.encode(words, add_special_tokens=False) == tok.encode(words, add_special_tokens=False)
    assert len(tok.encode(words, add_special_tokens=False)) == len(words.split())  # a token a word


def test_encode_anchors_the_prompt_and_round_trips_a_plan(blocks):
    tok = blocks.tokenizer()
    p = blocks.problem(BLOCKS / "probBLOCKS-4-0.pddl", anchors=["2:(stack c b)"])
    t = blocks.encode(p, tok)
    assert int(t.masked.sum()) == (blocks.max_steps - 1) * 3  # step 2 is anchored
    assert "s2.a" not in t.slots and "s1.a" in t.slots
    assert tok.decode(t.input_ids[: t.plan_start].tolist()).startswith("init ")
    solution = "pick-up o2\nstack o2 o1"
    filled = blocks.encode(TaskProblem(p.task), tok, solution)
    text = blocks.decode(p, blocks.encode(TaskProblem(p.task), tok), filled.input_ids)
    assert text.splitlines()[:3] == ["pick-up o2", "stack o2 o1", "noop"]


# ---- the validator against PlanValidator -----------------------------------------------------


@pytest.fixture(scope="module")
def solved(blocks, grip):
    out = []
    for planner, path in ((blocks, BLOCKS / "probBLOCKS-4-0.pddl"), (blocks, BLOCKS / "probBLOCKS-5-1.pddl"),
                          (grip, GRIPPER / "prob01.pddl")):
        p = planner.problem(path)
        out.append((planner, p, optimal_plan(p.task)))
    return out


def test_validator_agrees_with_plan_validator(solved):
    rng = random.Random(0)
    for planner, p, plan in solved:
        assert planner.check(p, plan_text(plan)) == [] and up_valid(p.task, plan)
        variants = [plan[:-1], plan[1:], plan[::-1]] + [rng.sample(plan, len(plan)) for _ in range(4)]
        for k in range(len(plan) - 1):
            swapped = plan[:]
            swapped[k], swapped[k + 1] = swapped[k + 1], swapped[k]
            variants.append(swapped)
        for v in variants:
            assert (planner.check(p, plan_text(v)) == []) == up_valid(p.task, v), v


def test_first_failing_step_and_missing_fact(solved):
    planner, p, plan = solved[0]
    broken = plan[:]
    broken[0], broken[1] = broken[1], broken[0]
    (v,) = planner.check(p, plan_text(broken))
    assert v.message.startswith("step 1 ") and "precondition (" in v.message and "does not hold" in v.message
    assert v.slots == step_slots(1, 2)
    assert planner.related_slots(p, planner.encode(p, planner.tokenizer()), v)[:3] == list(step_slots(1, 2))
    unmet = planner.check(p, plan_text(plan[:-1]))
    assert unmet and all("is not met" in u.message for u in unmet)


def test_malformed_steps_are_violations(blocks, solved):
    _, p, plan = solved[0]
    assert "not an action" in blocks.check(p, "fly o1\n" + plan_text(plan))[0].message
    assert "takes 1 argument" in blocks.check(p, "pick-up o1 o2")[0].message
    assert "comes after the plan ended" in blocks.check(p, "noop\n" + plan_text(plan))[0].message


# ---- hooks ---------------------------------------------------------------------------------


def test_hooks_allow_the_oracle_plan_and_prune_broken_prefixes(blocks, solved):
    tok = blocks.tokenizer()
    _, p, plan = solved[1]
    t = blocks.encode(p, tok)
    full = blocks.encode(TaskProblem(p.task), tok, plan_text(plan)).input_ids
    hooks = blocks.constraints(p, t, tok)
    x = t.input_ids.clone()[None]
    for pos in t.masked.nonzero().flatten().tolist():
        out = hooks.logits_hook(0, x, torch.zeros(1, x.shape[1], len(tok)))
        assert out[0, pos, full[pos]] > -1  # the optimal plan's token is always allowed
        assert not hooks.dead_end(x)[0]
        x[0, pos] = full[pos]
    assert not hooks.dead_end(x)[0]
    s, w = t.plan_start, t.step_width
    y = x.clone()
    y[0, s: s + w], y[0, s + w: s + 2 * w] = x[0, s + w: s + 2 * w].clone(), x[0, s: s + w].clone()
    assert hooks.dead_end(y)[0]
    assert hooks.logits_hook.h_max(p.task.init) <= len(plan)


def test_unreachable_within_the_steps_is_a_dead_end(solved):
    _, p, plan = solved[1]
    short = TasksPlanner.for_domain(BLOCKS / "domain.pddl", max_steps=2, max_objects={"o": 8})
    tok = short.tokenizer()
    t = short.encode(p, tok)
    hooks = short.constraints(p, t, tok)
    assert hooks.dead_end(t.input_ids[None])[0]


# ---- user rules ------------------------------------------------------------------------------


def test_rules_name_unknown_objects_and_contradictions(blocks):
    path = BLOCKS / "probBLOCKS-4-0.pddl"
    with pytest.raises(ProblemError, match="unknown object 'zz'"):
        blocks.problem(path, anchors=["3:(pick-up zz)"])
    with pytest.raises(ProblemError, match="unknown action 'fly'"):
        blocks.problem(path, forbid=["(fly a)"])
    with pytest.raises(ProblemError, match="contradictory anchors"):
        blocks.problem(path, anchors=["1:(pick-up a)", "1:(pick-up b)"])
    with pytest.raises(ProblemError, match="forbidden"):
        blocks.problem(path, anchors=["1:(pick-up a)"], forbid=["(pick-up a)"])
    with pytest.raises(ProblemError, match="outside the plan"):
        blocks.problem(path, anchors=["99:(pick-up a)"])


def test_rules_are_checked(blocks, solved):
    _, p, plan = solved[0]
    task = p.task
    first, last = task.show_step(plan[0]), task.show_step(plan[-1])
    ok = TaskProblem(task, Rules.parse(task, anchors=[f"last:{last}", f"1:{first}"]))
    assert blocks.check(ok, plan_text(plan)) == []
    banned = TaskProblem(task, Rules.parse(task, forbid=[first]))
    assert "forbidden" in blocks.check(banned, plan_text(plan))[0].message
    wrong_last = TaskProblem(task, Rules.parse(task, anchors=[f"last:{first}"]))
    assert "last step must be" in blocks.check(wrong_last, plan_text(plan))[0].message
    order = TaskProblem(task, Rules.parse(task, before=[(last, first)]))
    assert "must come after" in blocks.check(order, plan_text(plan))[0].message


# ---- the dependency graph ----------------------------------------------------------------------


def test_graph_layers_are_valid_in_any_order(grip, solved):
    _, p, plan = solved[2]
    g = dependency_graph(p.task, plan)
    ls = layers(g)
    assert sorted(k for layer in ls for k in layer) == list(range(len(plan)))
    assert len(ls) < len(plan)  # gripper's two arms: some steps run side by side
    for order in itertools.islice(itertools.product(*[list(itertools.permutations(layer)) for layer in ls]), 20):
        linear = [plan[k] for perm in order for k in perm]
        assert grip.check(p, plan_text(linear)) == []
    data = graph_json(p.task, g)
    assert {"nodes", "edges", "layers"} <= set(data) and data["edges"][0]["kind"] in ("supplies", "threat")
    assert to_dot(p.task, g).startswith("digraph plan {")


# ---- generators -----------------------------------------------------------------------------------


def test_generated_problems_are_solvable(blocks, grip):
    rng = random.Random(3)
    for task in (blocksworld(blocks.domain, rng, 4), gripper(grip.domain, rng, 3)):
        plan = optimal_plan(task)
        assert plan and up_valid(task, plan)
    logistics = Domain.from_file(PDDL / "logistics00" / "domain.pddl")
    user = logistics.read_problem(PDDL / "logistics00" / "probLOGISTICS-4-0.pddl")
    made = from_problem(user, rng)
    assert made.goal and not made.satisfied(made.init)
    assert optimal_plan(made) is not None


def test_examples_are_suffixes_of_oracle_plans(blocks):
    from planners.tasks.dataset import to_record

    rng = random.Random(5)
    records = []
    for _ in range(3):
        task = blocksworld(blocks.domain, rng, 4)
        records.append(to_record(task, optimal_plan(task)))
    planner = TasksPlanner(blocks.domain, max_steps=20, max_objects={"o": 8}, records=records)
    for ex in planner.examples(12, random.Random(0)):
        assert planner.check(ex.problem, ex.solution) == []


def test_a_plan_longer_than_the_models_context_is_refused(blocks):
    planner = TasksPlanner.for_domain(BLOCKS / "domain.pddl", max_steps=20, max_objects={"o": 8})
    planner.context = 64
    p = planner.problem(BLOCKS / "probBLOCKS-4-0.pddl")
    with pytest.raises(ProblemError, match="more than the model's context of 64"):
        planner.encode(p, planner.tokenizer())
