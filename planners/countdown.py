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

import json
import random
import re
from collections import Counter
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from dream_agent.errors import ProblemError, TemplateError
from dream_agent.template import Anchor, Slot, Template
from dream_agent.tokenization import char_tokenizer
from dream_agent.validation import Violation

from .base import Constraints, Example, Planner

NUMBER_MIN, NUMBER_MAX = 1, 9999  # inputs are positive; 4 digits fit the default field width
TARGET_MIN, TARGET_MAX = 0, 9999  # a target of 0 is odd but reachable (5-5=0)
MIN_NUMBERS, MAX_NUMBERS = 2, 6  # Dream's sets use 3 to 5; 6 is the classic game
PAD = "_"  # left padding inside a number field
DIGITS = "0123456789"
OPS = "+-*/"
# Paths with * or / rarely end in 10..100, so they are offered more often; these weights give
# about - 45%, + 27%, / 14%, * 14% of accepted steps, close to Dream's cd4 (46/28/14/12).
MUL_WEIGHT, DIV_WEIGHT = 3, 6
Step = tuple[int, str, int, int]  # (a, op, b, result)
STEP_RE = re.compile(r"\s*(-?\d+)\s*([-+*/])\s*(-?\d+)\s*=\s*(-?\d+)\s*")


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
    if not re.fullmatch(r"[+-]?\d+", token):
        raise ProblemError(f"{token!r} is not a whole number")
    if token.startswith("-"):
        raise ProblemError(f"{token} is negative; countdown numbers are positive")
    return int(token)


def parse_problem(text: str) -> CountdownProblem:
    """A problem from Dream's input "86,28,13,31,96" (the last number is the target), from
    "86 28 13 31 -> 96" or "numbers: 86 28 13 31 target: 96", or from a Dream jsonl row."""
    text = text.strip()
    if text.startswith("{"):
        try:
            row = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProblemError(f"not valid JSON: {e.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("input"), str):
            raise ProblemError('a JSON problem needs an "input" string such as "86,28,13,31,96"')
        text = row["input"]
    text = re.sub(r"^\s*numbers\s*:", "", text, flags=re.I)
    parts = re.split(r"->|=>|-{0,2}target\s*:?", text, maxsplit=1, flags=re.I)
    if len(parts) == 2:
        tokens, target_tokens = parts[0].replace(",", " ").split(), parts[1].replace(",", " ").split()
        if len(target_tokens) != 1:
            raise ProblemError(f"expected one target after the numbers, got {parts[1].strip()!r}")
        tokens.append(target_tokens[0])
    else:
        tokens = text.replace(",", " ").split()
    values = [_int_token(t) for t in tokens]
    if len(values) < MIN_NUMBERS + 1:
        example = "e.g. '86,28,13,31,96'"
        raise ProblemError(f"need at least {MIN_NUMBERS} numbers and a target, {example}; got {text.strip()!r}")
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
    for k, step in enumerate(steps, 1):
        if isinstance(step, str):
            unreadable = True
            message = f"step {k}: cannot read {step!r} as a step such as 86+28=114"
            out.append(Violation(message, step_slots(k, n_steps)))
            continue
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


# ---- the generator ----------------------------------------------------------------------------


def random_solution(numbers: list[int], rng: random.Random, limit: int) -> tuple[list[Step], int] | None:
    """A random valid path over `numbers` as steps, and its final result; None where a result reaches `limit`.

    Pairs are drawn from everything available, inputs and results alike, so the steps come in
    varied orders (two independent steps then a join, chains, ...), as in Dream's outputs."""
    pool = list(numbers)
    steps = []
    while len(pool) > 1:
        i, j = rng.randrange(len(pool)), rng.randrange(len(pool) - 1)
        j += j >= i  # two distinct indices, cheaper than rng.sample
        x, y = pool[i], pool[j]
        hi, lo = (x, y) if x >= y else (y, x)
        options = [(x, "+", y, x + y), (hi, "-", lo, hi - lo)]
        if x * y < limit:
            options += [(x, "*", y, x * y)] * MUL_WEIGHT
        if lo > 1 and hi % lo == 0:
            options += [(hi, "/", lo, hi // lo)] * DIV_WEIGHT
        elif lo == 1:  # x/1 is legal but trivial: no extra weight
            options.append((hi, "/", lo, hi))
        a, op, b, r = rng.choice(options)
        if r >= limit:
            return None
        steps.append((a, op, b, r))
        for idx in sorted((i, j), reverse=True):
            pool.pop(idx)
        pool.append(r)
    return steps, pool[0]


# ---- the planner ------------------------------------------------------------------------------


class CountdownPlanner(Planner):
    name = "countdown"
    alphabet = DIGITS + OPS + "=,>|" + PAD
    description = "Countdown: combine numbers with + - * / to reach a target (Dream's cd3/cd4/cd5 format)"

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
        p = Path(path)
        if not p.is_file():
            raise ProblemError(f"{path}: no such file")
        out = []
        with p.open(encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ProblemError(f"{path}:{i}: not valid JSON ({e.msg})") from None
                if not isinstance(row, dict) or not isinstance(row.get("input"), str):
                    raise ProblemError(f'{path}:{i}: expected an object with an "input" string')
                try:
                    problem = parse_problem(row["input"])
                except ProblemError as e:
                    raise ProblemError(f"{path}:{i}: {e}") from None
                solution = row.get("output")
                out.append(Example(problem, solution if isinstance(solution, str) else None))
        return out

    def examples(self, n: int, rng: random.Random) -> list[Example]:
        limit = 10**self.width
        out: list[Example] = []
        for _ in range(n):
            size = rng.choice(self.sizes)  # drawn first, so sizes stay evenly mixed although small ones succeed more
            found = None
            while found is None:
                numbers = [rng.randint(1, 99) for _ in range(size)]
                for _ in range(8):  # a few paths over the same numbers before drawing new ones
                    found = random_solution(numbers, rng, limit)
                    if found is not None and 10 <= found[1] <= 100:
                        break
                    found = None
            # numbers are in range by construction: skip pydantic's validation on this hot path
            solution = ",".join(f"{a}{op}{b}={r}" for a, op, b, r in found[0])
            out.append(Example(CountdownProblem.model_construct(numbers=numbers, target=found[1]), solution))
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
        return Constraints(logits_hook=FieldHook(problem, template, tokenizer, self.width))

    # -- text for people --

    def render(self, problem: CountdownProblem, solution: str) -> str:
        steps = _parse_steps(solution.strip())
        if any(isinstance(s, str) for s in steps):
            return solution
        return "\n".join(f"{a} {op} {b} = {r}" for a, op, b, r in steps)

    def problem_text(self, problem: CountdownProblem) -> str:
        return str(problem)


# ---- the logits hook ----------------------------------------------------------------------------


class FieldHook:
    """`hook(step, x, logits) -> logits` keeping number fields well formed while they fill.

    Per number field (W positions, left to right): pad only left of the digits (no pad
    right of a revealed digit, only pad left of a revealed pad), no leading zero, and the
    last position is a digit. Step 1 can only combine inputs, so its operand fields are
    limited to the inputs still consistent with their revealed characters. The template
    occupies positions [0, N) of every row of x (the sampler right-pads; every row is this
    problem, e.g. several samples of it); later columns are left alone. Rules read x before
    a step, so two positions of one field revealed in the same step can still disagree. Where the rules leave a position nothing (an inconsistent fill), it
    falls back to the template's own allowed set.
    """

    def __init__(self, problem: CountdownProblem, template: Template, tokenizer, width: int):
        def tid(ch: str) -> int:
            ids = tokenizer.encode(ch, add_special_tokens=False)
            if len(ids) != 1:
                raise TemplateError(f"the tokenizer has no single token for {ch!r}")
            return int(ids[0])

        self.n, self.w = len(template), width
        self.mask_id = template.mask_token_id if template.mask_token_id is not None else tokenizer.mask_token_id
        self.pad_id, self.zero_id = tid(PAD), tid("0")
        self.digit_ids = torch.tensor([tid(c) for c in DIGITS])
        n_steps = len(problem.numbers) - 1
        names = [f"s{k}.{p}" for k in range(1, n_steps + 1) for p in "abr" if f"s{k}.{p}" in template.slots]
        self.fields = torch.tensor([template.slots[s] for s in names])  # (F, W) positions; s1.a, s1.b first
        self.slot_pos = torch.tensor(sorted(p for ps in template.slots.values() for p in ps))
        self.allowed = [template.allowed[p] for p in range(self.n)]
        cands = [str(v).rjust(width, PAD) for v in problem.numbers]
        self.cands = torch.tensor([[tid(c) for c in s] for s in cands])  # (C, W) the inputs, padded
        self._cache: dict = {}

    def _tables(self, vocab: int, device):
        """Static tables per (vocab, device): the base allowed mask and the candidates' one-hot."""
        key = (vocab, str(device))
        if key not in self._cache:
            base = torch.ones((self.n, vocab), dtype=torch.bool)  # (N, V)
            for p, allowed in enumerate(self.allowed):
                if allowed is not None:
                    base[p] = False
                    base[p, [i for i in allowed if i < vocab]] = True
            base[self.fields[:, -1], self.pad_id] = False  # a number has at least one digit
            if self.w > 1:
                base[self.fields[:, 0], self.zero_id] = False  # a leading zero in a full-width field
            static_forbid = torch.zeros_like(base)  # (N, V) anchors are left alone
            static_forbid[self.slot_pos] = ~base[self.slot_pos]
            onehot = torch.nn.functional.one_hot(self.cands, vocab).bool()  # (C, W, V)
            tables = (static_forbid, base[self.fields], onehot, self.cands, self.fields, self.digit_ids)
            self._cache[key] = tuple(t.to(device) for t in tables)
        return self._cache[key]

    def __call__(self, step, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        B, _, V = logits.shape
        static_forbid, base_f, onehot, cands, fields, digit_ids = self._tables(V, logits.device)
        fx = x[:, fields]  # (B, F, W)
        revealed = fx != self.mask_id
        is_pad = fx == self.pad_id
        is_digit = torch.isin(fx, digit_ids)
        is_zero = fx == self.zero_id
        d = is_digit.int()
        digit_before = (d.cumsum(-1) - d) > 0  # (B, F, W) a digit somewhere to the left
        p = is_pad.int().flip(-1)
        pad_after = ((p.cumsum(-1) - p) > 0).flip(-1)  # a pad somewhere to the right
        pad_left = torch.zeros_like(is_pad)
        pad_left[..., 1:] = is_pad[..., :-1]  # the position just left is a pad
        zero_right = torch.zeros_like(is_zero)
        zero_right[..., : self.w - 2] = is_zero[..., 1 : self.w - 1]  # a non-final 0 just right: no pad here

        allow = base_f.unsqueeze(0).expand(B, -1, -1, -1).clone()  # (B, F, W, V)
        allow[..., self.pad_id] &= ~(digit_before | zero_right)
        allow[..., digit_ids] &= ~pad_after.unsqueeze(-1)
        no_zero = pad_left.clone()
        no_zero[..., self.w - 1] = False  # "___0" is the number zero
        allow[..., self.zero_id] &= ~no_zero

        # Step 1's operands: inputs that agree with what each field already shows.
        s1 = fx[:, :2]  # (B, 2, W)
        agree = ((s1.unsqueeze(2) == cands) | ~revealed[:, :2].unsqueeze(2)).all(-1)  # (B, 2, C)
        reach = (agree[..., None, None] & onehot).any(2)  # (B, 2, W, V) characters some agreeing input has
        allow[:, :2] &= reach

        empty = ~allow.any(-1, keepdim=True)  # an inconsistent fill: keep the template's own sets
        allow = torch.where(empty, base_f.unsqueeze(0), allow)

        forbid = torch.zeros_like(logits, dtype=torch.bool)  # (B, L, V); columns past the template stay free
        forbid[:, : self.n] = static_forbid
        forbid[:, fields] = ~allow
        return logits.masked_fill(forbid, torch.finfo(logits.dtype).min)
