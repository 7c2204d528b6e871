"""Countdown: reach a target from given numbers with + - * /, in Dream's answer format.

    "86,28,13,31,96"  ->  "86+28=114,31-13=18,114-18=96"

Rules (Dream's cd3/cd4/cd5 sets): each step combines two available numbers (inputs or
earlier results, each used once); every input is used, so n numbers take n-1 steps;
intermediate results are non-negative integers; division only when exact; the last
result is the target.

Template (W = `width`, 4 by default; "_" pads a number on the left):

    86,28,13,31>96|{s1.a:W}{s1.op:1}{s1.b:W}={s1.r:W},{s2.a:W}...,{s3.a:W}{s3.op:1}{s3.b:W}=__96
    filled: 86,28,13,31>96|__86+__28=_114,__31-__13=__18,_114-__18=__96

The last result is an anchor holding the target: the end is known, which is what a
diffusion model exploits. W=4 covers results up to 9999; the generator keeps every
intermediate below 10**W. Dream's reference outputs need 5 digits in one row of 3,000
(cd5: "...=10560"); `check` accepts it, `encode` of that solution raises `ProblemError`.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from dream_agent.errors import ProblemError, TemplateError, quoted
from dream_agent.template import Anchor, Slot, Template
from dream_agent.validation import Violation

from .base import Constraints, Example, Planner, dream_row, read_text_file, require_text

if TYPE_CHECKING:  # torch loads with the model: parsing a problem does not need it
    import torch

NUMBER_MIN, NUMBER_MAX = 1, 9999  # inputs are positive; 4 digits fit the default field width
TARGET_MIN, TARGET_MAX = 0, 9999  # a target of 0 is odd but reachable (5-5=0)
MIN_NUMBERS, MAX_NUMBERS = 2, 6  # Dream's sets use 3 to 5; 6 is the classic game (templates and data go to 6)
# `parse` takes at most 5: six-number problems are not solved at the rate of smaller ones (the
# bundled model never saw one; `1 2 3 4 5 6 -> 720` spends the whole search budget), BENCHMARKS.md.
PARSE_MAX_NUMBERS = 5
PAD = "_"  # left padding inside a number field
DIGITS = "0123456789"
OPS = "+-*/"
Step = tuple[int, str, int, int]  # (a, op, b, result)
# ASCII digits only, at most MAX_DIGITS of them: a longer number can be no input nor result, and
# Python refuses to read one of more than 4,300 digits (int_max_str_digits) with a ValueError.
MAX_DIGITS = 18
NUMBER = rf"-?[0-9]{{1,{MAX_DIGITS}}}"
STEP_RE = re.compile(rf"\s*({NUMBER})\s*([-+*/])\s*({NUMBER})\s*=\s*({NUMBER})\s*")
FIELD_RE = re.compile(r"_*([1-9][0-9]*|0)")  # a well-formed number field: pads, then a number without leading zero


# ---- the problem ----------------------------------------------------------------------------


class CountdownProblem(BaseModel):
    """Numbers to combine and the target; invalid values raise `ProblemError`, not `ValidationError`."""

    model_config = ConfigDict(frozen=True)

    numbers: list[int]
    target: int

    def __init__(self, **data):
        try:
            super().__init__(**data)
        except ValidationError as e:  # one line a person can act on, as the CLI expects
            err = e.errors()[0]
            cause = err.get("ctx", {}).get("error")
            where = ".".join(str(p) for p in err["loc"])
            raise ProblemError(str(cause) if cause else f"{where}: {err['msg']}") from None

    @field_validator("numbers")
    @classmethod
    def _numbers_in_range(cls, numbers: list[int]) -> list[int]:
        if not MIN_NUMBERS <= len(numbers) <= MAX_NUMBERS:
            raise ValueError(f"countdown needs {MIN_NUMBERS} to {MAX_NUMBERS} numbers, got {len(numbers)}")
        for v in numbers:
            if not NUMBER_MIN <= v <= NUMBER_MAX:
                raise ValueError(f"number {v} is out of range; use whole numbers from {NUMBER_MIN} to {NUMBER_MAX}")
        return numbers

    @model_validator(mode="after")
    def _target_in_range(self) -> CountdownProblem:
        if not TARGET_MIN <= self.target <= TARGET_MAX:
            raise ValueError(
                f"target {self.target} is out of range; use a whole number from {TARGET_MIN} to {TARGET_MAX}"
            )
        return self

    def __str__(self) -> str:
        return f"{','.join(map(str, self.numbers))} -> {self.target}"


def _int_token(token: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", token):
        raise ProblemError(f"{quoted(token)} is not a whole number")
    if token.startswith("-"):
        raise ProblemError(f"{quoted(token)} is negative; countdown numbers are positive")
    if len(token.lstrip("+0")) > MAX_DIGITS:
        raise ProblemError(f"{quoted(token)} is out of range; use whole numbers up to {NUMBER_MAX}")
    return int(token)


def parse_problem(text: str) -> CountdownProblem:
    """A problem from Dream's input "86,28,13,31,96" (the last number is the target), from
    "86 28 13 31 -> 96" or "numbers: 86 28 13 31 target: 96", or from a Dream jsonl row."""
    text = require_text(text, "a countdown problem").strip()
    if text.startswith("{"):
        text = dream_row(text)["input"]
    text = re.sub(r"^\s*numbers\s*:", "", text, flags=re.I)
    parts = re.split(r"->|=>|-{0,2}target\s*:?", text, maxsplit=1, flags=re.I)
    if len(parts) == 2:
        tokens, target_tokens = parts[0].replace(",", " ").split(), parts[1].replace(",", " ").split()
        if len(target_tokens) != 1:
            raise ProblemError(f"expected one target after the numbers, got {quoted(parts[1].strip())}")
        tokens.append(target_tokens[0])
    else:
        tokens = text.replace(",", " ").split()
    values = [_int_token(t) for t in tokens]
    if len(values) < MIN_NUMBERS + 1:
        example = "e.g. '86,28,13,31,96'"
        raise ProblemError(f"need at least {MIN_NUMBERS} numbers and a target, {example}; got {quoted(text.strip())}")
    if len(values) - 1 > PARSE_MAX_NUMBERS:
        raise ProblemError(f"got {len(values) - 1} numbers; countdown solves {MIN_NUMBERS} to {PARSE_MAX_NUMBERS} "
                           f"(the last number given is the target)")
    return CountdownProblem(numbers=values[:-1], target=values[-1])


# ---- steps: a safe parser and the rules -------------------------------------------------------


def _apply(a: int, op: str, b: int) -> int | None:
    """The exact result, or None for a division that is not exact."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b if b != 0 and a % b == 0 else None


def _reaches(numbers: list[int], target: int) -> bool:
    """Whether two different items of `numbers` make `target` with one operation."""
    return any(_apply(x, op, y) == target for i, x in enumerate(numbers) for j, y in enumerate(numbers) if i != j
               for op in OPS)


def _parse_steps(solution: str) -> list[Step | str]:
    """Each step as (a, op, b, result), or its raw text where it does not read as a step."""
    out: list[Step | str] = []
    for piece in solution.split(","):
        m = STEP_RE.fullmatch(piece)
        out.append((int(m[1]), m[2], int(m[3]), int(m[4])) if m else piece.strip())
    return out


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def step_slots(k: int, n_steps: int, parts: str = "a op b r") -> tuple[str, ...]:
    """Slot names of step k (1-based); the last step has no result slot (its result is the target anchor)."""
    if not 1 <= k <= n_steps:
        return ()
    return tuple(f"s{k}.{p}" for p in parts.split() if not (p == "r" and k == n_steps))


def check_solution(problem: CountdownProblem, solution: str) -> list[Violation]:
    n_steps = len(problem.numbers) - 1
    every_slot = tuple(s for k in range(1, n_steps + 1) for s in step_slots(k, n_steps))
    if not isinstance(solution, str) or not solution.strip():
        return [Violation("the solution is empty", every_slot)]
    steps = _parse_steps(solution.strip())
    out: list[Violation] = []
    inputs, results = Counter(problem.numbers), Counter()  # what is still available
    seen = set(problem.numbers)  # everything that was ever available, for "already used"
    produced: list[tuple[int, int]] = []  # (step, result) for "never used"
    unreadable = False
    left: list[int] | None = None  # the numbers the last step may combine, when every step before it is right
    for k, step in enumerate(steps, 1):
        if isinstance(step, str):
            unreadable = True
            message = f"step {k}: cannot read {quoted(step)} as a step such as 86+28=114"
            out.append(Violation(message, step_slots(k, n_steps)))
            continue
        if k == n_steps == len(steps) and k > 1 and not out:
            left = sorted((inputs + results).elements())
        a, op, b, r = step
        for v, part in ((a, "a"), (b, "b")):
            if results[v] > 0:  # a fresh result before an input of the same value: either reads the same
                results[v] -= 1
            elif inputs[v] > 0:
                inputs[v] -= 1
            else:
                why = "already used" if v in seen else "not available"
                out.append(Violation(f"step {k} uses {v}, which is {why}", step_slots(k, n_steps, part)))
        true = _apply(a, op, b)
        if true is None:
            out.append(Violation(f"step {k}: division {a}/{b} is not exact", step_slots(k, n_steps, "a op b")))
        elif true < 0:
            message = f"step {k}: {a}-{b} is {true}, a negative intermediate result"
            out.append(Violation(message, step_slots(k, n_steps, "a op b")))
        elif true != r:
            out.append(Violation(f"step {k}: {a}{op}{b} is {true}, not {r}", step_slots(k, n_steps)))
        results[r] += 1
        seen.add(r)
        produced.append((k, r))

    last = step_slots(n_steps, n_steps)
    count = f"the solution has {_steps(len(steps))}; {len(problem.numbers)} numbers need {n_steps}"
    if len(steps) < n_steps:
        out.append(Violation(count, tuple(s for k in range(len(steps) + 1, n_steps + 1) for s in step_slots(k, n_steps))))
    elif len(steps) > n_steps:
        out.append(Violation(count, last))
    if isinstance(steps[-1], tuple) and steps[-1][3] != problem.target:
        out.append(Violation(f"step {len(steps)} result {steps[-1][3]} is not the target {problem.target}", last))
    if left is not None and out and not _reaches(left, problem.target):
        # The last step is wrong because no last step could be right: the fault lies earlier.
        # Blaming the step before it makes refinement re-choose from there.
        numbers = ", ".join(map(str, left))
        message = f"step {n_steps - 1} leaves {numbers}, from which no single step makes the target {problem.target}"
        out.append(Violation(message, step_slots(n_steps - 1, n_steps)))
    if not unreadable:  # with an unreadable step, "never used" would only repeat it
        for v, count in sorted(inputs.items()):
            out += [Violation(f"input {v} is never used", last)] * count
        if produced:
            results[produced[-1][1]] -= 1  # the final result is the answer, not a leftover
        for k, r in produced[:-1]:
            if results[r] > 0:
                results[r] -= 1
                out.append(Violation(f"result {r} of step {k} is never used", step_slots(k, n_steps)))
    return out


# ---- the planner ------------------------------------------------------------------------------


class CountdownPlanner(Planner):
    name = "countdown"
    alphabet = DIGITS + OPS + "=,>|" + PAD
    description = "Countdown: combine numbers with + - * / to reach a target (Dream's cd3/cd4/cd5 format)"
    # The search here chooses one character at a time, and undoing a wrong early choice (a
    # number's length) costs many forward passes: on cd5, 10 rounds solve 65%, 40 rounds 94%.
    max_rounds = 40

    def __init__(self, sizes: tuple[int, ...] = (3, 4, 5), width: int = 4):
        if not sizes or any(not MIN_NUMBERS <= s <= MAX_NUMBERS for s in sizes):
            raise ValueError(f"sizes must be numbers of inputs from {MIN_NUMBERS} to {MAX_NUMBERS}, got {sizes}")
        if width < 3:
            raise ValueError(f"width must be at least 3 (targets reach 100), got {width}")
        self.sizes = tuple(sizes)
        self.width = width  # characters a number field holds; intermediates stay below 10**width
        self._tokenizer = None

    # -- problems and data --

    def parse(self, text: str) -> CountdownProblem:
        return parse_problem(text)

    def load_dataset(self, path: str) -> list[Example]:
        out = []
        for i, line in enumerate(read_text_file(path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = dream_row(line)
                problem = parse_problem(row["input"])
            except ProblemError as e:
                raise ProblemError(f"{path}:{i}: {e}") from None
            solution = row.get("output")
            out.append(Example(problem, solution if isinstance(solution, str) else None))
        return out

    def examples(self, n: int, rng: random.Random) -> list[Example]:
        """Dream's way: a target in 10..100, then inputs in 1..99 drawn again until they can reach it."""
        from .countdown_generator import random_path, reaches  # the data side only: solving never needs it

        limit = 10**self.width
        out: list[Example] = []
        for _ in range(n):
            size = rng.choice(self.sizes)  # drawn first, so sizes stay evenly mixed although large ones succeed more
            target = rng.randint(10, 100)  # drawn once: targets stay uniform although small ones are reached more
            while True:
                numbers = [rng.randint(1, 99) for _ in range(size)]
                if reaches(tuple(sorted(numbers)), target, limit):
                    break
            steps = random_path(tuple(sorted(numbers)), target, rng, limit)
            solution = ",".join(f"{a}{op}{b}={r}" for a, op, b, r in steps)
            # numbers are in range by construction: skip pydantic's validation on this hot path
            out.append(Example(CountdownProblem.model_construct(numbers=numbers, target=target), solution))
        return out

    # -- the template --

    def _field(self, value: int) -> str:
        text = str(value)
        if len(text) > self.width or value < 0:
            raise ProblemError(f"{value} does not fit a {self.width}-character number field")
        return text.rjust(self.width, PAD)

    def encode(self, problem: CountdownProblem, tokenizer, solution: str | None = None) -> Template:
        n_steps, w = len(problem.numbers) - 1, self.width
        prompt = f"{','.join(map(str, problem.numbers))}>{problem.target}|"
        segments: list[Anchor | Slot] = [Anchor(prompt)]
        for k in range(1, n_steps + 1):
            segments += [Slot(f"s{k}.a", w, DIGITS + PAD), Slot(f"s{k}.op", 1, OPS), Slot(f"s{k}.b", w, DIGITS + PAD)]
            if k < n_steps:
                segments += [Anchor("="), Slot(f"s{k}.r", w, DIGITS + PAD), Anchor(",")]
            else:
                segments.append(Anchor("=" + self._field(problem.target)))  # the known end
        template = Template(segments, tokenizer)
        if solution is None:
            return template

        steps = _parse_steps(solution.strip())
        if len(steps) != n_steps or any(isinstance(s, str) for s in steps):
            raise ProblemError(f"the solution {solution!r} is not {n_steps} steps such as 86+28=114")
        if steps[-1][3] != problem.target:
            raise ProblemError(f"the solution ends at {steps[-1][3]}, not the target {problem.target}")
        body = ",".join(f"{self._field(a)}{op}{self._field(b)}={self._field(r)}" for a, op, b, r in steps)
        ids = tokenizer.encode(prompt + body, add_special_tokens=False)
        if len(ids) != len(template):
            raise TemplateError(f"the filled template has {len(ids)} tokens, expected {len(template)}")
        return template.with_values(ids, remask=[])

    def decode(self, problem: CountdownProblem, template: Template, ids) -> str:
        import torch

        ids = torch.as_tensor(ids)
        if ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]
        ids = ids.tolist()
        tokenizer = template.tokenizer or self._char_tokenizer()
        vocab = len(tokenizer)

        def chars(slot: str) -> str:  # anything that is not one character (MASK, unk, out of vocab) reads "?"
            toks = [tokenizer.convert_ids_to_tokens(ids[p]) if 0 <= ids[p] < vocab else None for p in template.slots[slot]]
            return "".join(t if isinstance(t, str) and len(t) == 1 else "?" for t in toks)

        n_steps = len(problem.numbers) - 1
        steps = []
        for k in range(1, n_steps + 1):
            # Only left padding is stripped: "8_6" or "" stays malformed, for the validator to reject.
            a, op, b = chars(f"s{k}.a").lstrip(PAD), chars(f"s{k}.op"), chars(f"s{k}.b").lstrip(PAD)
            r = chars(f"s{k}.r").lstrip(PAD) if k < n_steps else str(problem.target)
            steps.append(f"{a}{op}{b}={r}")
        return ",".join(steps)

    def _char_tokenizer(self):
        if self._tokenizer is None:
            from dream_agent.tokenization import char_tokenizer  # transformers: only when a fill is decoded without one

            self._tokenizer = char_tokenizer(self.alphabet)
        return self._tokenizer

    # -- validation and refinement --

    def check(self, problem: CountdownProblem, solution: str) -> list[Violation]:
        return check_solution(problem, solution)

    def related_slots(self, problem: CountdownProblem, template: Template, violation: Violation) -> list[str]:
        """The failing step and every later one: a later step may use the failing step's result."""
        steps = [int(m[1]) for s in violation.slots if (m := re.match(r"s(\d+)\.", s))]
        first = min(steps) if steps else 1  # a violation with no step: re-solve everything
        return [s for s in template.slots if int(s[1 : s.index(".")]) >= first]

    def constraints(self, problem: CountdownProblem, template: Template, tokenizer) -> Constraints:
        hook = FieldHook(problem, template, tokenizer, self.width)
        return Constraints(logits_hook=hook, dead_end=hook.dead_end)

    # -- text for people --

    def render(self, problem: CountdownProblem, solution: str) -> str:
        """One step a line, "86 + 28 = 114"; a step that does not read as one is shown as written."""
        return "\n".join(s if isinstance(s, str) else f"{s[0]} {s[1]} {s[2]} = {s[3]}" for s in _parse_steps(solution.strip()))

    def problem_text(self, problem: CountdownProblem) -> str:
        return str(problem)


# ---- the logits hook ----------------------------------------------------------------------------

# Number fields are read as bit patterns: position p of a W-wide field owns bits [11p, 11p+11),
# one bit per character of NUM_CHARS; a revealed character sets one bit, a mask all eleven. A
# number's own pattern has one bit per position, so `number & pattern == number` says it agrees.
NUM_CHARS = DIGITS + PAD
CHAR_BITS = len(NUM_CHARS)
ANY_CHAR = (1 << CHAR_BITS) - 1
ANY_OP = (1 << len(OPS)) - 1
PAD_BIT, ZERO_BIT = 1 << NUM_CHARS.index(PAD), 1 << NUM_CHARS.index("0")
DIGIT_BITS = ANY_CHAR & ~PAD_BIT
ANY_VALUE = object()  # a solved operand that may be any number (0*y == 0)
MAX_VALUES = 128  # an undetermined result keeps its possible values up to this many, else only its pattern
ENUMERATE = 256  # with no known result, pairs with an undetermined result are listed up to this many (x, op, y)


@functools.cache
def _number_patterns(width: int) -> tuple[int, ...]:
    """The field pattern of every number below 10**width (built once a process: the hook's hot path)."""
    return tuple(sum(1 << (NUM_CHARS.index(ch) + CHAR_BITS * p) for p, ch in enumerate(str(v).rjust(width, PAD)))
                 for v in range(10**width))


def _solve_b(x: int, op: str, r: int):
    """The b with x op b == r: an int, ANY_VALUE, or None."""
    if op == "+":
        y = r - x
    elif op == "-":
        y = x - r
    elif op == "*":
        if x == 0:
            return ANY_VALUE if r == 0 else None
        y = r // x
    else:
        if r == 0:
            return ANY_VALUE if x == 0 else None
        y = x // r
    return y if y >= 0 and _apply(x, op, y) == r else None


def _solve_a(y: int, op: str, r: int):
    """The a with a op y == r: an int, ANY_VALUE, or None."""
    if op == "+":
        x = r - y
    elif op == "-":
        x = r + y
    elif op == "*":
        if y == 0:
            return ANY_VALUE if r == 0 else None
        x = r // y
    else:
        if y == 0:
            return None
        x = r * y
    return x if x >= 0 and _apply(x, op, y) == r else None


class FieldHook:
    """`hook(step, x, logits) -> logits`: constraint propagation over the number fields while they fill.

    Character level: pad only left of the digits, no leading zero, the last
    position a digit. Number level (per row, reading the steps in order): a multiset of
    available items, the inputs plus earlier results, each used once. Per step:
      - an operand may only become an available item that agrees with its revealed characters
        (a and b two different items), and the operator only one giving a valid step
        (a non-negative integer, exact division, fitting the width);
      - where the result is known (the target in the last step, or a fully revealed result
        field), only pairs with a op b == result survive;
      - the result field may only become a op b for a surviving (a, op, b); once a, op and b
        are determined that is one number: the result is forced;
      - an operand determined (one item left) is consumed for later steps; an undetermined
        result stays available later with its possible values (up to MAX_VALUES, else only
        the characters it may have), which later steps combine or solve for like numbers.
    Propagation only runs forward, one step at a time: it never asks whether a result can
    still reach the target, so the model chooses the path. Rules read x before a step, so two
    positions of one field revealed in the same step can still disagree; where the rules leave
    a position nothing (an inconsistent fill), the number rules are dropped there and the field
    is only kept well formed (else the template's own set), for the validator and refinement to
    handle; `dead_end(x)` reports such fills. The template occupies positions [0, N) of every
    row of x (the sampler right-pads; every row is this problem, e.g. several samples of it);
    later columns are left alone. Per-step results are memoised: successive calls share prefixes.
    """

    def __init__(self, problem: CountdownProblem, template: Template, tokenizer, width: int):
        def tid(ch: str) -> int:
            ids = tokenizer.encode(ch, add_special_tokens=False)
            if len(ids) != 1:
                raise TemplateError(f"the tokenizer has no single token for {ch!r}")
            return int(ids[0])

        import torch

        self.n, self.w, self.limit = len(template), width, 10**width
        self.mask_id = template.mask_token_id if template.mask_token_id is not None else tokenizer.mask_token_id
        self.char_ids = [tid(c) for c in NUM_CHARS]  # index c <-> bit c of a position's group
        self.op_ids = [tid(o) for o in OPS]
        self.char_bit = {t: 1 << c for c, t in enumerate(self.char_ids)}
        self.op_bit = {t: 1 << i for i, t in enumerate(self.op_ids)}
        self.any_field = sum(ANY_CHAR << (CHAR_BITS * p) for p in range(width))

        n_steps = len(problem.numbers) - 1
        names = [f"s{k}.{p}" for k in range(1, n_steps + 1) for p in "abr" if f"s{k}.{p}" in template.slots]
        index = {s: i for i, s in enumerate(names)}
        self.fields = torch.tensor([template.slots[s] for s in names])  # (F, W) positions
        self.field_pos = [template.slots[s] for s in names]
        self.op_pos = [template.slots[f"s{k}.op"][0] for k in range(1, n_steps + 1)]  # (S,)
        # per step: field indices of a, b, r (None in the last step: its result is the target) and the op position
        self.steps = [(index[f"s{k}.a"], index[f"s{k}.b"], index.get(f"s{k}.r"), self.op_pos[k - 1])
                      for k in range(1, n_steps + 1)]
        self.slot_pos = torch.tensor(sorted(p for ps in template.slots.values() for p in ps))
        self.allowed = [template.allowed[p] for p in range(self.n)]
        self.target = problem.target
        self.inputs = tuple(sorted(Counter(problem.numbers).items()))  # the available multiset: (value, count)
        self.patterns = _number_patterns(width)  # number -> its field pattern
        self._steps_memo: dict = {}  # (state, fields of one step) -> what that step allows; fills share prefixes
        self._rows_memo: dict = {}  # a row's slot tokens -> its allowed-character codes
        self._cache: dict = {}
        # The template's own sets as bits: per field position its characters (a number has a last
        # digit, a full-width field no leading zero), per step its operators.
        def own(p: int, ids: list[int]) -> int:
            return sum(1 << c for c, t in enumerate(ids) if self.allowed[p] is None or t in self.allowed[p])

        last_digit, first_nonzero = ~PAD_BIT, ~ZERO_BIT if width > 1 else ANY_CHAR
        self.base_bits = [[own(p, self.char_ids) & (last_digit if i == width - 1 else ANY_CHAR)
                           & (first_nonzero if i == 0 else ANY_CHAR) for i, p in enumerate(ps)] for ps in self.field_pos]
        self.base_op_bits = [own(p, self.op_ids) for p in self.op_pos]

    # -- number level: plain Python over bit patterns --

    def _bits(self, v: int) -> int | None:
        """The pattern of number v in a field (one bit per position), None if it does not fit."""
        return self.patterns[v] if 0 <= v < self.limit else None

    def _fits(self, v: int, pattern: int) -> bool:
        if not 0 <= v < self.limit:
            return False
        b = self.patterns[v]
        return b & pattern == b

    def _meets(self, p: int, q: int) -> bool:
        """Some number could agree with both patterns: every position has a common character."""
        m = p & q
        return all((m >> (CHAR_BITS * i)) & ANY_CHAR for i in range(self.w))

    def _value(self, pattern: int) -> int | None:
        """The number a fully revealed field reads, None if a position is masked or it is malformed."""
        chars = []
        for i in range(self.w):
            g = (pattern >> (CHAR_BITS * i)) & ANY_CHAR
            if g == 0 or g & (g - 1):  # masked (several bits) or not a number character
                return None
            chars.append(NUM_CHARS[g.bit_length() - 1])
        text = "".join(chars)
        return int(text.lstrip(PAD)) if FIELD_RE.fullmatch(text) else None

    def _wild_fits(self, v: int, item) -> bool:
        pattern, values = item
        return v in values if values is not None else self._fits(v, pattern)

    def _wild_bits(self, item, field: int) -> int:
        """What an undetermined result contributes to a field that may take it."""
        pattern, values = item
        if values is None:
            return pattern & field
        out = 0
        for v in values:
            if self._fits(v, field):
                out |= self._bits(v)
        return out

    def _wild_values(self, item, field: int) -> list[int] | None:
        """The values an undetermined result may take in `field`: the field's own if fully revealed,
        else its possible values; None when they are not known."""
        v = self._value(field)
        if v is not None:
            return [v] if self._wild_fits(v, item) else []
        pattern, values = item
        return None if values is None else [v for v in values if self._fits(v, field)]

    def _takes(self, item, v: int, field: int, wild: tuple) -> bool:
        """Whether an operand item can be the value v in `field`."""
        return v == item[1] if item[0] == "v" else self._fits(v, field) and self._wild_fits(v, wild[item[1]])

    def _item_bits(self, item, field: int, wild: tuple) -> int:
        return self._bits(item[1]) if item[0] == "v" else self._wild_bits(wild[item[1]], field)

    def _wild_meets(self, item, field: int) -> bool:
        pattern, values = item
        if values is None:
            return self._meets(pattern, field)
        return any(self._fits(v, field) for v in values)

    def _step(self, known: tuple, wild: tuple, pa: int, po: int, pb: int, pr: int | None):
        """One step's allowed (a, op, b, r) patterns and the state after it.

        known: ((value, count), ...) available numbers; wild: ((pattern, values|None), ...)
        available results not determined yet. pr is None in the last step (result: the target)."""
        key = (known, wild, pa, po, pb, pr)
        hit = self._steps_memo.get(key)
        if hit is not None:
            return hit
        counts = dict(known)
        last = pr is None
        goal = self.target if last else self._value(pr)  # a known result: only pairs reaching it
        ops = [(1 << i, o) for i, o in enumerate(OPS) if po >> i & 1]
        pats, limit = self.patterns, self.limit
        A = [v for v in counts if self._fits(v, pa)]
        B = [v for v in counts if self._fits(v, pb)]
        Aw = [j for j, item in enumerate(wild) if self._wild_meets(item, pa)]
        Bw = [j for j, item in enumerate(wild) if self._wild_meets(item, pb)]
        a_bits = b_bits = r_bits = op_bits = 0
        a_items, b_items, r_values = set(), set(), set()
        r_loose = False  # a result of an undetermined item: anything

        # Each side's items: an available number, or an earlier undetermined result with the values
        # it may take here (None: not known, only a pattern).
        side_a = [(("v", v), (v,)) for v in A] + [(("w", j), self._wild_values(wild[j], pa)) for j in Aw]
        side_b = [(("v", v), (v,)) for v in B] + [(("w", j), self._wild_values(wild[j], pb)) for j in Bw]
        n_ops = len(ops)
        for ia, xs in side_a:
            for ib, ys in side_b:
                if ia == ib and (ia[0] == "w" or counts[ia[1]] < 2):
                    continue  # two different items
                if xs is not None and ys is not None and (goal is None or len(xs) * len(ys) == 1) \
                        and len(xs) * len(ys) * n_ops <= ENUMERATE:  # few values: every (x, op, y)
                    for x in xs:
                        for y in ys:
                            for bit, o in ops:
                                r = _apply(x, o, y)
                                if r is None or not 0 <= r < limit:
                                    continue
                                if goal is not None:
                                    if r != goal:
                                        continue
                                elif not last and pats[r] & pr != pats[r]:
                                    continue
                                a_bits |= pats[x]
                                b_bits |= pats[y]
                                op_bits |= bit
                                a_items.add(ia)
                                b_items.add(ib)
                                r_values.add(r)
                elif goal is None or (xs is None and ys is None):  # too many values, or only a pattern
                    a_bits |= self._wild_bits(wild[ia[1]], pa) if ia[0] == "w" else self._bits(ia[1])
                    b_bits |= self._wild_bits(wild[ib[1]], pb) if ib[0] == "w" else self._bits(ib[1])
                    op_bits |= po
                    a_items.add(ia)
                    b_items.add(ib)
                    r_loose |= goal is None
                elif ys is None or (xs is not None and len(xs) <= len(ys)):  # a's values, each solved for b
                    for x in xs:
                        for bit, o in ops:
                            y = _solve_b(x, o, goal)
                            if y is None or not (y is ANY_VALUE or self._takes(ib, y, pb, wild)):
                                continue
                            a_bits |= self._bits(x)
                            b_bits |= self._item_bits(ib, pb, wild) if y is ANY_VALUE else self._bits(y)
                            op_bits |= bit
                            a_items.add(ia)
                            b_items.add(ib)
                else:  # b's values, each solved for a
                    for y in ys:
                        for bit, o in ops:
                            x = _solve_a(y, o, goal)
                            if x is None or not (x is ANY_VALUE or self._takes(ia, x, pa, wild)):
                                continue
                            a_bits |= self._item_bits(ia, pa, wild) if x is ANY_VALUE else self._bits(x)
                            b_bits |= self._bits(y)
                            op_bits |= bit
                            a_items.add(ia)
                            b_items.add(ib)

        # Consume what is determined: one item left, or a fully revealed field.
        consumed_wild = set()
        for items, pattern in ((a_items, pa), (b_items, pb)):
            item = next(iter(items)) if len(items) == 1 else None
            v = self._value(pattern)
            if v is not None:  # revealed: the validator reads it so, feasible or not
                matches = [j for j, w in enumerate(wild) if j not in consumed_wild and self._wild_fits(v, w)]
                item = ("v", v) if counts.get(v, 0) > 0 else (("w", matches[0]) if len(matches) == 1 else None)
            if item is None:
                continue  # unknown item: later steps keep every candidate (sound, looser)
            if item[0] == "v" and counts.get(item[1], 0) > 0:
                counts[item[1]] -= 1
            elif item[0] == "w":
                consumed_wild.add(item[1])

        new_wild = [w for j, w in enumerate(wild) if j not in consumed_wild]
        if not last:
            revealed = self._value(pr)
            if revealed is not None:
                result = revealed
            elif not r_loose and len(r_values) == 1:
                result = next(iter(r_values))  # a, op and b determined: the result is forced
            else:
                result = None
                if r_loose or not r_values:
                    new_wild.append((pr, None))
                else:
                    pattern = 0
                    for r in r_values:
                        pattern |= self._bits(r)
                    new_wild.append((pattern & pr, frozenset(r_values) if len(r_values) <= MAX_VALUES else None))
            if result is not None:
                counts[result] = counts.get(result, 0) + 1
            if r_loose:
                r_bits = self.any_field
            else:
                for r in r_values:
                    r_bits |= self._bits(r)
        new_known = tuple(sorted((v, c) for v, c in counts.items() if c > 0))
        dead = not a_items  # no (a, op, b) of available items fits: no completion of this fill is valid
        out = (a_bits, op_bits, b_bits, r_bits, new_known, tuple(new_wild), dead)
        if len(self._steps_memo) > 50_000:
            self._steps_memo.clear()
        self._steps_memo[key] = out
        return out

    def _row(self, row: list[int]) -> tuple[list[int], list[int], bool]:
        """Per position of every field, the allowed-character bits (0: nothing); per step the op bits;
        whether some step has no consistent (a, op, b) left (a dead end)."""
        key = tuple(row[p] for ps in self.field_pos for p in ps) + tuple(row[p] for p in self.op_pos)
        hit = self._rows_memo.get(key)
        if hit is not None:
            return hit
        mask, cb = self.mask_id, self.char_bit
        pats = []
        for ps in self.field_pos:
            pat = 0
            for i, p in enumerate(ps):
                t = row[p]
                pat |= (ANY_CHAR if t == mask else cb.get(t, 0)) << (CHAR_BITS * i)
            pats.append(pat)
        field_bits = [0] * len(self.field_pos)
        op_bits = []
        known, wild, dead = self.inputs, (), False
        for ia, ib, ir, opp in self.steps:
            t = row[opp]
            po = ANY_OP if t == mask else self.op_bit.get(t, 0)
            pr = None if ir is None else pats[ir]
            a, o, b, r, known, wild, stuck = self._step(known, wild, pats[ia], po, pats[ib], pr)
            dead |= stuck
            field_bits[ia], field_bits[ib] = a, b
            if ir is not None:
                field_bits[ir] = r
            op_bits.append(o)
        codes = [(f >> (CHAR_BITS * i)) & ANY_CHAR for f in field_bits for i in range(self.w)]
        out = (codes, op_bits, dead)
        if len(self._rows_memo) > 20_000:
            self._rows_memo.clear()
        self._rows_memo[key] = out
        return out

    def dead_end(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B,) bool: the number rules leave some step nothing, so no completion is valid.

        For `dream_agent.search.backtrack`, which retreats there; the logits hook itself falls back
        to the template's sets instead, so that a plain denoising pass still finishes its fill."""
        import torch

        return torch.tensor([self._row(r)[2] for r in x[:, : self.n].tolist()], dtype=torch.bool, device=x.device)

    # -- character level: per field, over the same bits --

    def _allowed_bits(self, row: list[int]) -> tuple[list[int], list[int]]:
        """Per position of every field, the characters it may take (bits of NUM_CHARS); per step the
        operators: the number rules (`_row`) within a well-formed field, where they leave something."""
        codes, op_codes, _ = self._row(row)
        w, out = self.w, []
        for f, ps in enumerate(self.field_pos):
            seen = [self.char_bit.get(row[p], 0) for p in ps]  # a revealed character's bit, else 0
            for i in range(w):
                base = formed = self.base_bits[f][i]
                if any(b & DIGIT_BITS for b in seen[:i]) or (i < w - 2 and seen[i + 1] == ZERO_BIT):
                    formed &= ~PAD_BIT  # no pad right of a digit, nor left of a zero that is not the last
                if PAD_BIT in seen[i + 1:]:
                    formed &= ~DIGIT_BITS  # no digit left of a pad
                if 0 < i < w - 1 and seen[i - 1] == PAD_BIT:
                    formed &= ~ZERO_BIT  # no leading zero
                formed = formed or base  # malformed already: the template's own set
                out.append(formed & codes[f * w + i] or formed)  # nothing left: drop the number rules here
        ops = [base & code or base for base, code in zip(self.base_op_bits, op_codes)]
        return out, ops

    def _tables(self, vocab: int, device):
        """Static tables per (vocab, device)."""
        import torch

        key = (vocab, str(device))
        if key not in self._cache:
            static_forbid = torch.zeros((self.n, vocab), dtype=torch.bool)  # (N, V) anchors are left alone
            for p in self.slot_pos.tolist():
                if self.allowed[p] is not None:
                    static_forbid[p] = True
                    static_forbid[p, [i for i in self.allowed[p] if i < vocab]] = False
            char_ids, op_ids, op_pos = torch.tensor(self.char_ids), torch.tensor(self.op_ids), torch.tensor(self.op_pos)
            shifts = torch.arange(CHAR_BITS)
            tables = (static_forbid, self.fields.reshape(-1, 1), char_ids, op_pos.unsqueeze(-1), op_ids, shifts)
            self._cache[key] = tuple(t.to(device) for t in tables)
        return self._cache[key]

    def __call__(self, step, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        import torch

        B, _, V = logits.shape
        static_forbid, field_pos, char_ids, op_pos, op_ids, shifts = self._tables(V, logits.device)
        chars, ops = zip(*(self._allowed_bits(r) for r in x[:, : self.n].tolist()))
        allow = (torch.tensor(chars, device=x.device).unsqueeze(-1) >> shifts) & 1  # (B, F*W, C)
        allow_ops = (torch.tensor(ops, device=x.device).unsqueeze(-1) >> shifts[: len(OPS)]) & 1  # (B, S, 4)
        forbid = torch.zeros_like(logits, dtype=torch.bool)  # (B, L, V); columns past the template stay free
        forbid[:, : self.n] = static_forbid
        forbid[:, field_pos, char_ids] = allow == 0
        forbid[:, op_pos, op_ids] = allow_ops == 0
        return logits.masked_fill(forbid, torch.finfo(logits.dtype).min)
