"""PDDL in: a domain and problem read with unified-planning, checked, renamed and grounded.

    domain = Domain.from_file("blocks/domain.pddl")
    task = domain.read_problem("blocks/probBLOCKS-4-0.pddl")
    task.init, task.goal          # frozensets of canonical facts: ("on", "o1", "o2")
    task.applicable(task.init)    # grounded actions whose preconditions hold

unified-planning parses (it reads the IPC files as they are, upper-case keywords included)
and later validates; the grounded STRIPS form here (sets of facts, one precondition/add/delete
set an action) is what the encoding, the constraint hooks and the generators use, because
they ask "what is applicable here" thousands of times a second.

Objects are renamed canonically: the i-th declared object of type T becomes `T{i}` (`o{i}`
in an untyped domain), so one model serves every problem of a domain up to its object limit.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dream_agent.errors import ProblemError

Fact = tuple[str, ...]  # ("on", "o1", "o2"): predicate then canonical objects
Step = tuple[str, ...]  # ("stack", "o1", "o2"): action then canonical objects

# unified-planning's problem-kind features we encode, and the PDDL requirement each other one means.
SUPPORTED = {"ACTION_BASED", "FLAT_TYPING", "HIERARCHICAL_TYPING", "NEGATIVE_CONDITIONS", "EQUALITIES"}
REQUIREMENT = {
    "CONTINUOUS_TIME": ":durative-actions", "DISCRETE_TIME": ":durative-actions",
    "INTERMEDIATE_CONDITIONS_AND_EFFECTS": ":durative-actions", "TIMED_EFFECTS": ":timed-initial-literals",
    "NUMERIC_FLUENTS": ":numeric-fluents", "INT_FLUENTS": ":numeric-fluents", "REAL_FLUENTS": ":numeric-fluents",
    "OBJECT_FLUENTS": ":object-fluents", "CONDITIONAL_EFFECTS": ":conditional-effects",
    "FORALL_EFFECTS": ":conditional-effects (forall effects)", "DISJUNCTIVE_CONDITIONS": ":disjunctive-preconditions",
    "EXISTENTIAL_CONDITIONS": ":existential-preconditions", "UNIVERSAL_CONDITIONS": ":universal-preconditions",
    "ACTIONS_COST": ":action-costs", "PLAN_LENGTH": ":action-costs (metric)", "FINAL_VALUE": ":action-costs (metric)",
    "STATE_INVARIANTS": ":constraints", "TRAJECTORY_CONSTRAINTS": ":constraints",
}


def _quiet_up():
    import unified_planning
    from unified_planning.shortcuts import get_environment

    env = get_environment()
    env.credits_stream = None  # no planner banner on stdout
    env.error_used_name = False
    return unified_planning


def _read_text(source: str | os.PathLike, what: str) -> str:
    """A file's text, or the text itself when `source` already holds PDDL."""
    text = str(source)
    if "(" in text:
        return text
    path = Path(source)
    if not path.is_file():
        raise ProblemError(f"{what} file {str(path)!r} does not exist")
    return path.read_text(encoding="utf-8", errors="replace")


DOMAIN_NAME = re.compile(r"\(\s*define\s*\(\s*domain\s+([^\s()]+)", re.I)
PROBLEM_DOMAIN = re.compile(r"\(\s*:domain\s+([^\s()]+)", re.I)
PREDICATES = re.compile(r"\(\s*:predicates\b", re.I)


def _distinct_variables(domain_text: str) -> str:
    """Give repeated variables in a predicate declaration distinct names: IPC's logistics declares
    `(in ?obj ?obj)`, which unified-planning reads as a predicate of one argument."""
    m = PREDICATES.search(domain_text)
    if not m:
        return domain_text
    depth, i = 1, m.end()
    while i < len(domain_text) and depth:
        depth += {"(": 1, ")": -1}.get(domain_text[i], 0)
        i += 1
    block = domain_text[m.end():i]

    def fix(decl: re.Match) -> str:
        seen: dict[str, int] = {}
        def var(v: re.Match) -> str:
            name = v.group(0).lower()
            seen[name] = seen.get(name, 0) + 1
            return v.group(0) if seen[name] == 1 else f"{v.group(0)}-{seen[name]}"
        return re.sub(r"\?[\w-]+", var, decl.group(0))

    return domain_text[:m.end()] + re.sub(r"\([^()]*\)", fix, block) + domain_text[i:]


def _parse(domain_text: str, problem_text: str | None):
    _quiet_up()
    domain_text = _distinct_variables(domain_text)
    if problem_text is not None:
        d, p = DOMAIN_NAME.search(domain_text), PROBLEM_DOMAIN.search(problem_text)
        if d and p and d.group(1).lower() != p.group(1).lower():
            raise ProblemError(f"the problem is for domain {p.group(1)!r}, not {d.group(1)!r}")
    from unified_planning.io import PDDLReader

    try:
        if problem_text is None:
            return PDDLReader().parse_problem_string(domain_text)
        return PDDLReader().parse_problem_string(domain_text, problem_text)
    except Exception as e:  # the reader raises pyparsing and UP errors of many kinds
        what = "domain" if problem_text is None else "domain or problem"
        message = " ".join(str(e).split()) or type(e).__name__
        raise ProblemError(f"malformed PDDL {what}: {message[:200]}") from None


def refuse_unsupported(up_problem) -> None:
    """A one-line error naming the first requirement the encoding cannot handle."""
    unsupported = [f for f in up_problem.kind.features if f not in SUPPORTED]
    for feature in sorted(unsupported, key=lambda f: (_requirement(f) is None, f)):  # named ones first
        if _requirement(feature) is not None:
            raise ProblemError(f"the tasks planner does not support {_requirement(feature)} "
                               f"(this PDDL uses {feature.lower().replace('_', ' ')})")
        raise ProblemError(f"the tasks planner does not support the PDDL feature {feature.lower().replace('_', ' ')}")


def _requirement(feature: str) -> str | None:
    if feature in REQUIREMENT:
        return REQUIREMENT[feature]
    if any(w in feature for w in ("NUMERIC", "INCREASE", "DECREASE", "INT_", "REAL_", "FLUENTS_IN")):
        return ":numeric-fluents"
    return None


@dataclass(frozen=True)
class ActionSchema:
    name: str
    params: tuple[tuple[str, str], ...]  # (parameter, type name)
    pre: tuple[tuple[bool, str, tuple], ...]  # (positive, predicate or "=", arguments: parameter names or objects)
    effects: tuple[tuple[bool, str, tuple], ...]  # (adds, predicate, arguments)


@dataclass(frozen=True)
class Grounded:
    step: Step
    pre: frozenset  # facts that must hold
    neg: frozenset  # facts that must not hold
    add: frozenset
    dele: frozenset

    def applicable(self, state: frozenset) -> bool:
        return self.pre <= state and not (self.neg & state)

    def apply(self, state: frozenset) -> frozenset:
        return (state - self.dele) | self.add


def _literal(node, params: set[str]) -> tuple[bool, str, tuple]:
    positive = True
    if node.is_not():
        positive, node = False, node.arg(0)
    if node.is_equals():
        args = tuple(a.parameter().name if a.is_parameter_exp() else a.object().name for a in node.args)
        return positive, "=", args
    if node.is_fluent_exp():
        args = tuple(a.parameter().name if a.is_parameter_exp() else a.object().name for a in node.args)
        return positive, node.fluent().name, args
    if node.is_or():
        raise ProblemError("the tasks planner does not support :disjunctive-preconditions")
    if node.is_exists() or node.is_forall():
        raise ProblemError("the tasks planner does not support quantified preconditions (:quantified-preconditions)")
    raise ProblemError(f"the tasks planner cannot encode the precondition {node}")


def _conjuncts(node):
    if node.is_and():
        for a in node.args:
            yield from _conjuncts(a)
    elif node.is_true():
        return
    else:
        yield node


class Domain:
    """A PDDL domain: predicates, action schemas, types; reads problems of it."""

    def __init__(self, text: str, name_hint: str = ""):
        self.text = text
        # unified-planning reads a domain alone as a problem without objects.
        up = _parse(text, None)
        refuse_unsupported(up)
        self.up_domain = up
        self.name = up.name.lower()
        # unified-planning gives an untyped domain one user type, "object"
        self.types: list[str] = [t.name for t in up.user_types if t.name != "object"]
        self.typed = bool(self.types)
        self.parents: dict[str, str | None] = {
            t.name: (t.father.name if t.father is not None else None) for t in up.user_types}
        self.predicates: dict[str, int] = {}
        for f in up.fluents:
            if not f.type.is_bool_type():
                raise ProblemError(f"the tasks planner does not support :numeric-fluents (fluent {f.name})")
            self.predicates[f.name] = f.arity
        self.schemas: dict[str, ActionSchema] = {}
        for a in up.actions:
            if not hasattr(a, "effects") or not hasattr(a, "preconditions"):
                raise ProblemError(f"the tasks planner does not support :durative-actions (action {a.name})")
            names = {p.name for p in a.parameters}
            pre = tuple(_literal(n, names) for c in a.preconditions for n in _conjuncts(c))
            effects = []
            for e in a.effects:
                if e.is_conditional():
                    raise ProblemError("the tasks planner does not support :conditional-effects")
                if getattr(e, "is_forall", lambda: False)():
                    raise ProblemError("the tasks planner does not support :conditional-effects (forall effects)")
                ok, pred, args = _literal(e.fluent, names)
                effects.append((bool(e.value.bool_constant_value()), pred, args))
            params = tuple((p.name, p.type.name if p.type.is_user_type() else "object") for p in a.parameters)
            self.schemas[a.name] = ActionSchema(a.name, params, pre, tuple(effects))
        self.max_arity = max([len(s.params) for s in self.schemas.values()] + [1])
        changing = {pred for s in self.schemas.values() for _, pred, _ in s.effects}
        self.static = set(self.predicates) - changing  # facts no action changes: true in every state or never

    @classmethod
    def from_file(cls, source: str | os.PathLike) -> Domain:
        return cls(_read_text(source, "domain"))

    def subtype(self, t: str, of: str) -> bool:
        while t is not None:
            if t == of:
                return True
            t = self.parents.get(t)
        return of == "object"

    def object_type(self, up_object) -> str:
        return up_object.type.name if up_object.type.is_user_type() else "object"

    def read_problem(self, source: str | os.PathLike, *, max_objects: dict[str, int] | None = None) -> "Task":
        text = _read_text(source, "problem")
        up = _parse(self.text, text)
        refuse_unsupported(up)
        return Task.from_up(self, up, max_objects=max_objects)


def object_key(typ: str) -> str:
    """The prefix of an object's canonical name: its type, or "o" when untyped."""
    return "o" if typ == "object" else typ


def canonical_names(domain: Domain, typed_objects: list[tuple[str, str]]) -> dict[str, str]:
    """Original name -> canonical token, numbering the objects of each type in declaration order."""
    counts: dict[str, int] = {}
    out = {}
    for name, typ in typed_objects:
        key = object_key(typ)
        counts[key] = counts.get(key, 0) + 1
        out[name] = f"{key}{counts[key]}"
    return out


@dataclass
class Task:
    """One problem of a domain in canonical names (the original names kept for people)."""

    domain: Domain = field(repr=False)
    objects: list[tuple[str, str]]  # (canonical token, type), declaration order
    init: frozenset  # facts true at the start (static ones included)
    goal: tuple[tuple[bool, Fact], ...]  # (positive, fact)
    original: dict[str, str] = field(default_factory=dict)  # canonical -> the problem's own name
    up_problem: object = field(default=None, repr=False)  # the parsed problem, for the validator (None for generated problems)

    @classmethod
    def from_up(cls, domain: Domain, up, *, max_objects: dict[str, int] | None = None) -> Task:
        dom_fluents = set(domain.predicates)
        if {f.name for f in up.fluents} != dom_fluents or {a.name for a in up.actions} != set(domain.schemas):
            raise ProblemError("the problem is for another domain (its predicates or actions differ)")
        typed = [(o.name, domain.object_type(o)) for o in up.all_objects]
        names = canonical_names(domain, typed)
        objects = [(names[n], t) for n, t in typed]
        if max_objects is not None:
            _check_limits(domain, objects, max_objects)

        def fact(node) -> Fact:
            return (node.fluent().name, *(names[a.object().name] for a in node.args))

        init = frozenset(fact(k) for k, v in up.explicit_initial_values.items() if v.bool_constant_value())
        goal = []
        for g in up.goals:
            for lit in _conjuncts(g):
                positive = True
                if lit.is_not():
                    positive, lit = False, lit.arg(0)
                if not lit.is_fluent_exp():
                    raise ProblemError(f"the tasks planner supports goals of (possibly negated) facts only, not {lit}")
                goal.append((positive, fact(lit)))
        return cls(domain, objects, init, tuple(goal), {v: k for k, v in names.items()}, up)

    # ---- grounding ------------------------------------------------------------------------

    @cached_property
    def actions(self) -> list[Grounded]:
        """Every ground action whose static preconditions hold (statics are fixed by the initial state)."""
        d = self.domain
        by_type: dict[str, list[str]] = {}
        for tok, typ in self.objects:
            by_type.setdefault(typ, []).append(tok)
        out = []
        for schema in d.schemas.values():
            pools = [[o for t, objs in by_type.items() if d.subtype(t, pt) for o in objs] for _, pt in schema.params]
            pnames = [p for p, _ in schema.params]
            for combo in itertools.product(*pools):
                bind = dict(zip(pnames, combo))
                g = self._ground(schema, bind)
                if g is not None:
                    out.append(g)
        return out

    def _ground(self, schema: ActionSchema, bind: dict[str, str]) -> Grounded | None:
        d = self.domain
        pre, neg = set(), set()
        for positive, pred, args in schema.pre:
            vals = tuple(bind.get(a, a) for a in args)
            if pred == "=":
                if (vals[0] == vals[1]) != positive:
                    return None
                continue
            f = (pred, *vals)
            if pred in d.static:
                if (f in self.init) != positive:
                    return None
                continue
            (pre if positive else neg).add(f)
        add, dele = set(), set()
        for adds, pred, args in schema.effects:
            f = (pred, *(bind.get(a, a) for a in args))
            (add if adds else dele).add(f)
        dele -= add  # PDDL: add after delete
        step = (schema.name, *(bind[p] for p, _ in schema.params))
        return Grounded(step, frozenset(pre), frozenset(neg), frozenset(add), frozenset(dele))

    @cached_property
    def by_step(self) -> dict[Step, Grounded]:
        return {g.step: g for g in self.actions}

    def applicable(self, state: frozenset) -> list[Grounded]:
        return [g for g in self.actions if g.applicable(state)]

    def satisfied(self, state: frozenset) -> bool:
        return all((f in state) == pos for pos, f in self.goal)

    def unmet(self, state: frozenset) -> list[tuple[bool, Fact]]:
        return [(pos, f) for pos, f in self.goal if (f in state) != pos]

    # ---- text for people --------------------------------------------------------------------

    def show_step(self, step: Step) -> str:
        return "(" + " ".join([step[0], *(self.original.get(a, a) for a in step[1:])]) + ")"

    def show_fact(self, fact: Fact, positive: bool = True) -> str:
        text = "(" + " ".join([fact[0], *(self.original.get(a, a) for a in fact[1:])]) + ")"
        return text if positive else f"(not {text})"

    def canonical_step(self, text: str) -> Step:
        """"(pick-up B)" in the problem's own names -> ("pick-up", "o2"); a one-line error names unknowns."""
        words = text.strip().strip("()").split()
        if not words:
            raise ProblemError(f"empty action {text!r}; write it as (action arg ...)")
        name, args = words[0].lower(), [w.lower() for w in words[1:]]
        schema = self.domain.schemas.get(name)
        if schema is None:
            raise ProblemError(f"unknown action {words[0]!r} in {text!r}; the domain has {', '.join(self.domain.schemas)}")
        to_canon = {v.lower(): k for k, v in self.original.items()}
        unknown = [a for a in args if a not in to_canon]
        if unknown:
            raise ProblemError(f"unknown object {unknown[0]!r} in {text!r}; the problem's objects are "
                               f"{', '.join(self.original[o] for o, _ in self.objects)}")
        if len(args) != len(schema.params):
            raise ProblemError(f"{name} takes {len(schema.params)} argument(s), {text!r} gives {len(args)}")
        step = (name, *(to_canon[a] for a in args))
        types = dict(self.objects)
        for (p, pt), a in zip(schema.params, step[1:]):
            if not self.domain.subtype(types[a], pt):
                raise ProblemError(f"{self.original[a]} is not a {pt} (parameter {p} of {name}) in {text!r}")
        return step


def _check_limits(domain: Domain, objects, max_objects: dict[str, int]) -> None:
    counts: dict[str, int] = {}
    for tok, typ in objects:
        key = object_key(typ)
        counts[key] = counts.get(key, 0) + 1
    for key, n in counts.items():
        limit = max_objects.get(key, 0)
        if n > limit:
            what = "objects" if key == "o" else f"objects of type {key}"
            raise ProblemError(f"the problem has {n} {what}, more than the model's limit of {limit}")
