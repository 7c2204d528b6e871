"""A task as a masked template, and a filled template back as a plan.

    init on o1 o2 ontable o2 clear o1 handempty goal on o2 o1 plan | pick-up o3 _ | stack o3 o1 | noop _ _ | ...
    '--------------------- anchored prompt ----------------------'  '----- N steps of 1 + arity tokens -----'

The initial state and goal (predicate names as words, objects by their canonical slot) are the
anchored prompt; each of the N plan steps is an action token and `max_arity` argument tokens
(`_` where the action takes fewer); a plan shorter than N ends in no-op steps. User anchors fix
whole steps. Slot names: `s3.a` (step 3's action), `s3.1`, `s3.2` (its arguments).
"""

from __future__ import annotations

import re

from dream_agent.errors import ProblemError
from dream_agent.template import Anchor, Slot, Template

from .domain import Fact, Step, Task
from .rules import Rules
from .vocab import GOAL, INIT, NONE, NOOP, NOT, PLAN, _word

NATURAL = re.compile(r"(\d+)")


def _natural(fact) -> tuple:
    return tuple(tuple(int(p) if p.isdigit() else p for p in NATURAL.split(w)) for w in fact)


def fact_words(fact: Fact) -> list[str]:
    return [_word(fact[0]), *fact[1:]]


def prompt_words(task: Task) -> list[str]:
    words = [INIT]
    for f in sorted(task.init, key=_natural):
        words += fact_words(f)
    words.append(GOAL)
    for positive, f in sorted(task.goal, key=lambda g: _natural(g[1])):
        words += ([] if positive else [NOT]) + fact_words(f)
    return words + [PLAN]


def step_words(step: Step | None, arity: int) -> list[str]:
    if step is None or step[0] == NOOP:
        return [NOOP] + [NONE] * arity
    return [_word(step[0]), *step[1:]] + [NONE] * (arity - len(step) + 1)


def step_slots(k: int, arity: int) -> tuple[str, ...]:
    return (f"s{k}.a", *(f"s{k}.{j}" for j in range(1, arity + 1)))


class Vocab:
    """Token ids of a domain tokenizer, read once."""

    def __init__(self, tokenizer):
        self.ids = dict(tokenizer.get_vocab())
        self.words = {i: w for w, i in self.ids.items()}

    def __call__(self, words: list[str]) -> list[int]:
        try:
            return [self.ids[w] for w in words]
        except KeyError as e:
            word = e.args[0].lstrip("@")
            if re.match(r"^.+\d+$", word):
                raise ProblemError(f"the problem has more objects than the model has slots for ({word} has none)") from None
            raise ProblemError(f"the model's vocabulary has no {word!r}: it was trained for another domain") from None


def encode(task: Task, rules: Rules, tokenizer, max_steps: int, *, vocab: Vocab | None = None,
           solution: list[Step] | None = None, max_length: int | None = None) -> Template:
    vocab = vocab or Vocab(tokenizer)
    arity = task.domain.max_arity
    acts = vocab([NOOP] + [_word(a) for a in task.domain.schemas])
    objs = vocab([NONE] + [o for o, _ in task.objects])
    segments: list = [Anchor(vocab(prompt_words(task)))]
    if solution is not None and len(solution) > max_steps:
        raise ProblemError(f"a plan of {len(solution)} steps does not fit {max_steps} slots")
    for k in range(1, max_steps + 1):
        if k in rules.anchors:
            segments.append(Anchor(vocab(step_words(rules.anchors[k], arity))))
            continue
        names = step_slots(k, arity)
        if solution is not None:
            words = step_words(solution[k - 1] if k <= len(solution) else None, arity)
            segments += [Anchor(vocab([w])) for w in words]
            continue
        segments.append(Slot(names[0], 1, allowed=acts))
        segments += [Slot(n, 1, allowed=objs) for n in names[1:]]
    template = Template(segments, tokenizer)
    if max_length is not None and len(template) > max_length:
        raise ProblemError(f"the problem and a plan of {max_steps} steps take {len(template)} positions, more than the "
                           f"model's context of {max_length}; use fewer --max-steps or a model trained for larger problems")
    if solution is not None:
        # A training target: the plan's tokens are the maskable part, the prompt stays fixed.
        start = len(segments[0].content)
        template.anchor_mask[start:] = False
        template.masked[start:] = False
    template.plan_start = len(segments[0].content)  # position of step 1's action
    template.step_width = arity + 1
    return template


def read_steps(template: Template, ids, vocab: Vocab, max_steps: int) -> list[list[str]]:
    """Each step's words ("?" where a position holds no word, e.g. still masked)."""
    ids = list(map(int, ids))
    w, start = template.step_width, template.plan_start
    out = []
    for k in range(max_steps):
        words = [vocab.words.get(i, "?") for i in ids[start + k * w: start + (k + 1) * w]]
        out.append([x.lstrip("@") if x.startswith("@") else (x if not x.startswith("<|") else "?") for x in words])
    return out


def solution_text(steps: list[list[str]]) -> str:
    """The validator's input: one line a step slot, the padding `_` dropped."""
    return "\n".join(" ".join(x for x in words if x != NONE) for words in steps)


def parse_solution(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()] if text.strip() else []
