"""`TasksPlanner`: PDDL domains in, validated plans out (robot task sequencing).

    planner = TasksPlanner.for_domain("blocks/domain.pddl", max_steps=24)
    problem = planner.problem("blocks/probBLOCKS-4-0.pddl", anchors=["last:(stack a b)"])
    result = solve(engine, planner, problem); planner.plan(problem, result.solution)

One planner a domain: `TasksPlanner()` as the registry builds it knows no domain until
`configure(domain=...)`. Its tokenizer is built from the domain (`vocab.domain_tokenizer`), so a
user's own domain trains its own model (`dream-agent train tasks --domain D`).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from dream_agent.errors import ProblemError
from dream_agent.template import Template
from dream_agent.validation import Violation

from ..base import Constraints, Example, Planner
from .domain import Domain, Step, Task, object_key
from .encoding import Vocab, encode, read_steps, solution_text, step_slots
from .rules import Rules
from .validate import check
from .vocab import NOOP, domain_tokenizer, object_limits

SETTINGS_FILE = "tasks.json"  # beside a trained model: its domain, plan slots and object limits


@dataclass
class TaskProblem:
    task: Task
    rules: Rules = field(default_factory=Rules)

    def __str__(self) -> str:
        return f"{self.task.domain.name} problem with {len(self.task.objects)} objects, {len(self.task.goal)} goals"


class TasksPlanner(Planner):
    name = "tasks"
    description = "robot task sequencing: a PDDL domain and problem in, a validated plan and its dependency graph out"
    max_rounds = 5  # the search gets 4 forward passes a masked position (a 24-step blocks plan: 288)

    def __init__(self, domain: Domain | None = None, *, max_steps: int = 24, max_objects: dict[str, int] | None = None,
                 records: list[dict] | None = None, heldout_share: float = 0.05):
        self.domain = domain
        self.max_steps = max_steps
        self.max_objects = max_objects or {}
        self.records: list[dict] = []
        self.heldout: list[dict] = []
        if records:
            n_held = max(1, int(len(records) * heldout_share)) if len(records) > 20 else 0
            self.records, self.heldout = records[: len(records) - n_held], records[len(records) - n_held:]
        self._vocab: dict[int, Vocab] = {}
        self.context: int | None = None  # the model's positions, once configured from a model directory

    # ---- configuration ------------------------------------------------------------------

    @classmethod
    def for_domain(cls, domain: str | Domain, **kwargs) -> TasksPlanner:
        return cls(domain if isinstance(domain, Domain) else Domain.from_file(domain), **kwargs)

    def configure(self, domain: str | Path | None = None, model_dir: str | Path | None = None,
                  max_steps: int | None = None) -> TasksPlanner:
        """Read a domain, and a trained model's settings (plan slots, object limits) when there is one."""
        if domain is not None:
            self.domain = Domain.from_file(domain)
        if model_dir is not None and (Path(model_dir) / SETTINGS_FILE).is_file():
            settings = json.loads((Path(model_dir) / SETTINGS_FILE).read_text())
            if self.domain is not None and settings.get("domain") not in (None, self.domain.name):
                raise ProblemError(f"the model in {model_dir} was not trained for domain {self.domain.name!r} "
                                   f"(it was trained for {settings['domain']!r})")
            self.max_steps = int(settings["max_steps"])
            self.max_objects = {k: int(v) for k, v in settings["max_objects"].items()}
        if model_dir is not None and (Path(model_dir) / "config.json").is_file():
            config = json.loads((Path(model_dir) / "config.json").read_text())
            self.context = config.get("absolute_position_embeddings") or config.get("max_position_embeddings")
        if max_steps is not None:
            self.max_steps = max_steps
        return self

    def settings(self) -> dict:
        return {"domain": self.domain.name, "max_steps": self.max_steps, "max_objects": self.max_objects}

    @property
    def data_note(self) -> str:
        """How the training examples were made (the model card's data line)."""
        return (f"drawn from {len(self.records):,} problems solved by Fast Downward (fast-downward-opt; "
                f"{len(self.heldout)} more held out): a random suffix of each shortest plan from the state it starts "
                f"in, objects re-declared in a random order; no evaluation file was used")

    def model_files(self) -> dict[str, str]:
        """Written beside a trained model: its settings and the domain it was trained on."""
        return {SETTINGS_FILE: json.dumps(self.settings(), indent=1) + "\n", "domain.pddl": self.domain.text}

    def _need_domain(self) -> Domain:
        if self.domain is None:
            raise ProblemError("the tasks planner needs a PDDL domain (--domain FILE)")
        return self.domain

    def tokenizer(self):
        """The domain's word-level tokenizer (what `dream-agent train` builds the model on)."""
        return domain_tokenizer(self._need_domain(), self.max_objects)

    def vocab(self, tokenizer) -> Vocab:
        key = id(tokenizer)
        if key not in self._vocab:
            self._vocab[key] = Vocab(tokenizer)
        return self._vocab[key]

    # ---- problems -----------------------------------------------------------------------

    def problem(self, source, *, anchors=(), forbid=(), before=()) -> TaskProblem:
        """A problem file (or its text) with the user's rules, checked."""
        domain = self._need_domain()
        task = domain.read_problem(source)
        if self.max_objects:
            from .domain import _check_limits
            _check_limits(domain, task.objects, self.max_objects)
        rules = Rules.parse(task, anchors=anchors, forbid=forbid, before=before, max_steps=self.max_steps)
        return TaskProblem(task, rules)

    def parse(self, text: str) -> TaskProblem:
        return self.problem(text)

    def load_dataset(self, path: str) -> list[Example]:
        """Every problem file in a directory (the domain file, if there, left out)."""
        folder = Path(path)
        if not folder.is_dir():
            raise ProblemError(f"{path} is not a directory of PDDL problem files")
        files = sorted(p for p in folder.glob("*.pddl") if "domain" not in p.name.lower())
        return [Example(self.problem(str(p))) for p in files]

    # ---- training data ------------------------------------------------------------------

    def examples(self, n: int, rng: random.Random) -> list[Example]:
        """Oracle-solved problems (`dataset.py`), each as a random suffix of its shortest plan from
        the state that suffix starts in, objects re-declared in a random order."""
        if not self.records:
            raise ProblemError("the tasks planner has no training problems; make them with planners.tasks.dataset")
        return [self._example(rng.choice(self.records), rng, suffix=True) for _ in range(n)]

    def heldout_examples(self, n: int, rng: random.Random) -> list[Example]:
        """Whole problems no training example is drawn from."""
        pool = self.heldout or self.records
        return [self._example(pool[i % len(pool)], rng, suffix=False) for i in range(min(n, len(pool)))]

    def _example(self, record: dict, rng: random.Random, *, suffix: bool) -> Example:
        from .dataset import record_task
        from .generators import rename_steps, shuffled

        task, plan = record_task(self._need_domain(), record)
        k = rng.randrange(len(plan)) if suffix else 0
        state = task.init
        for step in plan[:k]:
            state = task.by_step[step].apply(state)
        start = Task(task.domain, task.objects, state, task.goal, dict(task.original))
        moved = shuffled(start, rng)
        mapping = {old: new for new, old in moved.original.items()}  # old canonical -> new canonical
        moved.original = {o: o for o, _ in moved.objects}
        steps = rename_steps(plan[k:], mapping)
        return Example(TaskProblem(moved), "\n".join(" ".join(s) for s in steps))

    # ---- template, decode, validator ------------------------------------------------------

    def encode(self, problem: TaskProblem, tokenizer, solution: str | None = None) -> Template:
        target = None
        if solution is not None:
            target = [tuple(line.split()) for line in solution.strip().splitlines() if line.strip()]
        max_length = self.context
        return encode(problem.task, problem.rules, tokenizer, self.max_steps, vocab=self.vocab(tokenizer),
                      solution=target, max_length=max_length)

    def decode(self, problem: TaskProblem, template: Template, ids) -> str:
        return solution_text(read_steps(template, ids, self.vocab(template.tokenizer), self.max_steps))

    def check(self, problem: TaskProblem, solution: str) -> list[Violation]:
        return check(problem.task, problem.rules, solution, self.max_steps)

    def related_slots(self, problem: TaskProblem, template: Template, violation: Violation) -> list[str]:
        """Refinement re-masks from the first step at fault to the end of the plan."""
        steps = [int(s[1:].split(".")[0]) for s in violation.slots if s.startswith("s")]
        if not steps:
            return list(violation.slots)
        arity = problem.task.domain.max_arity
        return [s for k in range(min(steps), self.max_steps + 1) for s in step_slots(k, arity) if s in template.slots]

    def search_window(self, template: Template) -> int:
        """The search builds the plan step by step: it chooses among the first open step's positions
        (the hooks know exactly what may go there; later steps only by shape)."""
        return template.step_width

    def constraints(self, problem: TaskProblem, template: Template, tokenizer) -> Constraints:
        from .hooks import PlanHook

        hook = PlanHook(problem.task, problem.rules, template, self.vocab(tokenizer), self.max_steps)
        return Constraints(logits_hook=hook, dead_end=hook.dead_end)

    # ---- results for people ----------------------------------------------------------------

    def plan(self, problem: TaskProblem, solution: str) -> list[Step]:
        """The plan's steps (canonical names) before its no-op end."""
        out = []
        for line in solution.strip().splitlines():
            words = tuple(line.split())
            if not words or words[0] == NOOP:
                break
            out.append(words)
        return out

    def plan_text(self, problem: TaskProblem, solution: str) -> list[str]:
        return [problem.task.show_step(s) for s in self.plan(problem, solution)]

    def render(self, problem: TaskProblem, solution: str) -> str:
        lines = self.plan_text(problem, solution)
        return "\n".join(f"{k:3d}. {s}" for k, s in enumerate(lines, start=1)) or "(empty plan)"

    def problem_text(self, problem: TaskProblem) -> str:
        return str(problem)


def limits_of(tasks: list[Task]) -> dict[str, int]:
    """Object slots a model needs for these problems: the most objects of each type any one has."""
    out: dict[str, int] = {}
    for t in tasks:
        counts: dict[str, int] = {}
        for _, typ in t.objects:
            counts[object_key(typ)] = counts.get(object_key(typ), 0) + 1
        for k, v in counts.items():
            out[k] = max(out.get(k, 0), v)
    return out


__all__ = ["TaskProblem", "TasksPlanner", "limits_of", "object_limits"]
